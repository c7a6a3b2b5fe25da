"""One subject through a fitted detector: maps -> clusters -> calibrated confidences -> truth record.

Shared by calibration (training), `predict_detector` and `evaluate_detector` so all three cluster
a map in exactly the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from fusemed.diagnosis.clusters import ClusterCalibrator, surface_clusters, volume_clusters
from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.detectors.base import DetectionMaps, Detector
from fusemed.diagnosis.metrics import SubjectDetection
from fusemed.diagnosis.operating import Sweep, sweep


def clusters_of(det: Detector, maps: DetectionMaps, calibrator: ClusterCalibrator | None = None,
                threshold: float | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Cluster table (with `confidence` when a calibrator is given) and label map of `maps`, at the
    detector's threshold or at `threshold`, on the maps' own grid (where the threshold was calibrated).
    A detector with its own `cluster_confidence(maps, table, labels)` (fitted on held-out clusters from
    more than the peak score, e.g. each view's uncertainty) gives the confidence instead of `calibrator`."""
    thr = det.threshold_ if threshold is None else float(threshold)
    if maps.space == "surface":
        mesh = det.mesh
        table, labels = surface_clusters(np.asarray(maps.prob), mesh.adjacency, mesh.coords, thr, int(det.min_size))
    else:
        table, labels = volume_clusters(np.asarray(maps.prob.dataobj), maps.prob.affine, thr, det.min_size)
    if calibrator is not None and len(table):
        own = getattr(det, "cluster_confidence", None)  # a detector's own calibrated rule (volume-surface)
        table["confidence"] = own(maps, table, labels) if own else calibrator(table["peak_score"].to_numpy())
    return table, labels


def truth_of(det: Detector, case: DetectionCase) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(lesion mask, distance to the lesion in mm) in the detector's output space; (None, None) if no lesion."""
    if det.space == "surface":
        if case.vertex_labels is None or not np.asarray(case.vertex_labels).any():
            return None, None
        lesion = np.asarray(case.vertex_labels) > 0
        dist, _ = cKDTree(det.mesh.coords[lesion]).query(det.mesh.coords)
        return lesion, dist
    if case.lesion is None:
        return None, None
    lesion = np.asarray(case.lesion.dataobj) > 0.5
    if not lesion.any():
        return None, None
    zooms = np.sqrt((case.lesion.affine[:3, :3] ** 2).sum(0))
    return lesion, ndimage.distance_transform_edt(~lesion, sampling=zooms)


def detect(det: Detector, case: DetectionCase, calibrator: ClusterCalibrator | None = None,
           mri_negative: bool | None = None,
           maps: DetectionMaps | None = None) -> tuple[DetectionMaps, SubjectDetection]:
    """Maps (`det.predict(case)` unless given) and the subject's detection record (clusters against
    its truth, when it has one)."""
    maps = det.predict(case) if maps is None else maps
    table, labels = clusters_of(det, maps, calibrator)
    lesion, dist = truth_of(det, case)
    return maps, SubjectDetection(subject=case.subject, is_patient=case.is_patient, clusters=table,
                                  labels=labels, lesion=lesion, lesion_distance=dist,
                                  mri_negative=mri_negative if case.is_patient else None)


def _false_cluster(lesion: np.ndarray | None) -> Callable[[pd.DataFrame, np.ndarray], bool]:
    """Predicate on (table, labels): a cluster not overlapping `lesion` exists (any cluster without one)."""
    def holds(table: pd.DataFrame, labels: np.ndarray) -> bool:
        ids = table["cluster"].to_numpy(dtype=int)
        return bool(len(ids if lesion is None else ids[~np.isin(ids, np.unique(labels[lesion]))]))
    return holds


def _lesion_cluster(lesion: np.ndarray) -> Callable[[pd.DataFrame, np.ndarray], bool]:
    """Predicate on (table, labels): a cluster overlapping `lesion` exists (the lesion is detected)."""
    def holds(table: pd.DataFrame, labels: np.ndarray) -> bool:
        return bool(np.isin(table["cluster"].to_numpy(dtype=int), np.unique(labels[lesion])).any())
    return holds


def _peak_bracket(det: Detector, maps: DetectionMaps, holds: Callable[[pd.DataFrame, np.ndarray], bool],
                  steps: int = 16, refine: int = 8) -> tuple[float, float]:
    """(lo, hi): the highest threshold found where `holds(*clusters_of(det, maps, threshold=t))`, and the
    next one tested above it where it does not (hi - lo = max / steps / 2**refine); (0, 0) if it never holds.

    Found from the top down (`steps` even steps, then `refine` bisections inside the step), not by
    bisection over the whole range: "a false-positive cluster exists" is not monotone in the
    threshold (lower down, clusters merge with the lesion's or fall under `min_size` apart)."""
    score = np.asarray(maps.prob if maps.space == "surface" else maps.prob.dataobj, dtype=float)
    top = float(score.max(initial=0.0))
    if top <= 0:
        return 0.0, 0.0

    def at(t: float) -> bool:
        return holds(*clusters_of(det, maps, threshold=t))

    step = top / steps
    lo = next((t for t in np.arange(steps - 1, -1, -1) * step if at(float(t))), None)
    if lo is None:
        return 0.0, 0.0
    hi = lo + step
    for _ in range(refine):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at(mid) else (lo, mid)
    return float(lo), float(hi)


def map_peak(det: Detector, maps: DetectionMaps, lesion: np.ndarray | None = None, steps: int = 16,
             refine: int = 8) -> float:
    """The highest threshold at which `maps` still hold a false-positive cluster (same rule and
    minimum size as `clusters_of`, on the maps' own grid); 0 when none even at 0. Without `lesion`
    (a control) every cluster is one; with it (bool, the maps' shape) only clusters not overlapping
    it. What a specificity-targeted threshold is calibrated on."""
    return _peak_bracket(det, maps, _false_cluster(lesion), steps, refine)[0]


def critical_thresholds(det: Detector, maps: DetectionMaps, lesion: np.ndarray | None = None) -> list[float]:
    """Thresholds just above where this subject's outcome changes for the last time: its last
    false-positive cluster vanishes and (a patient, `lesion` given) its lesion stops being detected.

    Added to the operating grid (`operating.operating_grid`), they put a curve point exactly where a
    control turns negative, so that sensitivity at specificity 0.8 is read at the first threshold that
    reaches 0.8, not at the next point of a fixed grid (which read 0.89 or 1.0 where maps crowd near 0.5)."""
    brackets = [_peak_bracket(det, maps, _false_cluster(lesion))]
    if lesion is not None and lesion.any():
        brackets.append(_peak_bracket(det, maps, _lesion_cluster(lesion)))
    return [hi for lo, hi in brackets if hi > 0]


def sweep_of(det: Detector, case: DetectionCase, maps: DetectionMaps, thresholds: np.ndarray,
             mri_negative: bool | None = None) -> Sweep:
    """`operating.sweep` of one scored subject: its map re-clustered at every threshold."""
    lesion, _ = truth_of(det, case)
    score = np.asarray(maps.prob if maps.space == "surface" else maps.prob.dataobj)
    return sweep(case.subject, case.is_patient, thresholds, lambda t: clusters_of(det, maps, threshold=t),
                 lesion, float(score.max(initial=0.0)), mri_negative)


def fit_calibrator(det: Detector, cases: list[DetectionCase], method: str = "isotonic") -> ClusterCalibrator:
    """Fit peak score -> P(cluster overlaps a lesion) on the clusters of held-out `cases`."""
    peaks, hits = [], []
    for case in cases:
        _, rec = detect(det, case)
        peaks.extend(rec.clusters["peak_score"].tolist())
        hits.extend(rec.hits().astype(float).tolist())
    return ClusterCalibrator(method).fit(np.asarray(peaks), np.asarray(hits))
