"""From a score map to ranked clusters with a calibrated confidence.

Clinicians read clusters, not voxels: threshold the map, take connected components (voxel
26-neighbourhood, or mesh edges on the surface), drop the small ones (MELD drops clusters under a
minimum size), rank by peak score. `ClusterCalibrator` turns a peak score into the probability
that the cluster is the lesion, fitted on clusters of held-out training subjects.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

COLUMNS = ["cluster", "rank", "size", "size_mm", "peak_score", "mean_score", "x_mm", "y_mm", "z_mm",
           "confidence"]


def _table(labels: np.ndarray, n: int, score: np.ndarray, coords_of, unit: float) -> tuple[pd.DataFrame,
                                                                                           np.ndarray]:
    rows = []
    for k in range(1, n + 1):
        idx = labels == k
        vals = score[idx]
        xyz = coords_of(idx)
        rows.append({"old": k, "size": int(idx.sum()), "size_mm": float(idx.sum() * unit),
                     "peak_score": float(vals.max()), "mean_score": float(vals.mean()),
                     "x_mm": float(xyz[:, 0].mean()), "y_mm": float(xyz[:, 1].mean()),
                     "z_mm": float(xyz[:, 2].mean())})
    df = pd.DataFrame(rows, columns=["old", *COLUMNS[2:-1]])
    df = df.sort_values("peak_score", ascending=False, kind="stable").reset_index(drop=True)
    relabel = np.zeros(n + 1, dtype=np.int32)
    relabel[df["old"].to_numpy(dtype=int)] = np.arange(1, len(df) + 1)
    df.insert(0, "cluster", np.arange(1, len(df) + 1))
    df.insert(1, "rank", np.arange(1, len(df) + 1))
    df["confidence"] = np.nan
    return df.drop(columns="old")[COLUMNS], relabel[labels]


def volume_clusters(score: np.ndarray, affine: np.ndarray, threshold: float,
                    min_size_mm3: float = 64.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Clusters of `score` (D, H, W) above `threshold`, at least `min_size_mm3` mm^3.

    Returns the cluster table (ranked by peak score, `cluster` == `rank`) and a (D, H, W) int32 label
    map where voxel value k is cluster k (0 = background).
    """
    vox = float(abs(np.linalg.det(affine[:3, :3])))
    labels, n = ndimage.label(score > threshold, structure=np.ones((3, 3, 3), bool))
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1) * vox
        keep = sizes >= min_size_mm3 * (1 - 1e-9)  # det() of a 2 mm affine is 7.999...: not below 8 mm^3
        keep[0] = False
        remap = np.zeros(n + 1, dtype=np.int32)
        remap[keep] = np.arange(1, int(keep.sum()) + 1)
        labels, n = remap[labels], int(keep.sum())

    def coords(idx: np.ndarray) -> np.ndarray:
        ijk = np.argwhere(idx)
        return ijk @ affine[:3, :3].T + affine[:3, 3]

    return _table(labels, n, score, coords, vox)


def cluster_peak(score: np.ndarray, min_voxels: float, steps: int = 16) -> float:
    """The highest threshold at which `score` (D, H, W) still holds a cluster of >= `min_voxels`
    voxels (26-neighbourhood); 0 when even the whole positive map is smaller.

    This, not the voxel maximum, is what decides whether a control "shows a cluster" once small
    clusters are dropped; bisection, since cluster sizes only shrink as the threshold rises.
    """
    lo, hi = 0.0, float(score.max(initial=0.0))
    structure = np.ones((3, 3, 3), bool)
    for _ in range(steps):
        mid = (lo + hi) / 2
        labels, n = ndimage.label(score > mid, structure=structure)
        if n and np.bincount(labels.ravel())[1:].max() >= min_voxels:
            lo = mid
        else:
            hi = mid
    return lo


def surface_clusters(score: np.ndarray, adjacency: sparse.spmatrix, coords: np.ndarray, threshold: float,
                     min_size: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Clusters of per-vertex `score` (V,) connected along mesh edges `adjacency` (V, V).

    `size` counts vertices, `size_mm` too (fsaverage5 has no per-vertex area here); centroids use
    `coords` (V, 3) in mm.
    """
    above = score > threshold
    labels = np.zeros(score.shape[0], dtype=np.int32)
    n = 0
    if above.any():
        idx = np.flatnonzero(above)
        sub = adjacency[idx][:, idx]
        _, comp = connected_components(sub, directed=False)
        sizes = np.bincount(comp)
        big = np.flatnonzero(sizes >= min_size)
        remap = np.full(sizes.shape[0], 0, dtype=np.int32)
        remap[big] = np.arange(1, big.size + 1)
        labels[idx] = remap[comp]
        n = int(big.size)
    return _table(labels, n, score, lambda m: coords[m], 1.0)


class ClusterCalibrator:
    """Peak score -> P(cluster is the lesion), isotonic (default) or Platt; raises when unfitted."""

    def __init__(self, method: str = "isotonic") -> None:
        if method not in ("isotonic", "platt"):
            raise ValueError(f"calibration method {method!r}: expected 'isotonic' or 'platt'")
        self.method = method
        self.x_: np.ndarray | None = None
        self.y_: np.ndarray | None = None

    def fit(self, peaks: np.ndarray, hits: np.ndarray) -> ClusterCalibrator:
        peaks, hits = np.asarray(peaks, float), np.asarray(hits, float)
        if peaks.size == 0:
            self.x_, self.y_ = np.array([0.0, 1.0]), np.array([0.0, 0.0])
        elif np.unique(hits).size < 2:
            self.x_, self.y_ = np.array([0.0, 1.0]), np.full(2, hits.mean())
        elif self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(peaks, hits)
            self.x_, self.y_ = iso.X_thresholds_, iso.y_thresholds_
        else:
            lr = LogisticRegression().fit(peaks[:, None], hits)
            self.x_ = np.array([float(lr.coef_[0, 0]), float(lr.intercept_[0])])
            self.y_ = np.array([])
        return self

    def __call__(self, peaks: np.ndarray) -> np.ndarray:
        if self.x_ is None:
            raise RuntimeError("ClusterCalibrator used before fit(): calibrate on held-out subjects first")
        peaks = np.asarray(peaks, float)
        if self.method == "platt" and self.y_.size == 0:
            return 1.0 / (1.0 + np.exp(-(self.x_[0] * peaks + self.x_[1])))
        return np.interp(peaks, self.x_, self.y_)

    def to_json(self) -> dict:
        return {"method": self.method, "x": None if self.x_ is None else self.x_.tolist(),
                "y": None if self.y_ is None else self.y_.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> ClusterCalibrator:
        c = cls(d["method"])
        if d.get("x") is not None:
            c.x_, c.y_ = np.asarray(d["x"], float), np.asarray(d["y"], float)
        return c

    def dumps(self) -> str:
        return json.dumps(self.to_json())
