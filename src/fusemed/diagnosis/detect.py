"""One subject through a fitted detector: maps -> clusters -> calibrated confidences -> truth record.

Shared by calibration (training), `predict_detector` and `evaluate_detector` so all three cluster
a map in exactly the same way.
"""

from __future__ import annotations

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
           mri_negative: bool | None = None) -> tuple[DetectionMaps, SubjectDetection]:
    """Maps and the subject's detection record (clusters against its truth, when it has one)."""
    maps = det.predict(case)
    table, labels = clusters_of(det, maps, calibrator)
    lesion, dist = truth_of(det, case)
    return maps, SubjectDetection(subject=case.subject, is_patient=case.is_patient, clusters=table,
                                  labels=labels, lesion=lesion, lesion_distance=dist,
                                  mri_negative=mri_negative if case.is_patient else None)


def map_peak(det: Detector, maps: DetectionMaps, lesion: np.ndarray | None = None, steps: int = 16,
             refine: int = 8) -> float:
    """The highest threshold at which `maps` still hold a false-positive cluster (same rule and
    minimum size as `clusters_of`, on the maps' own grid); 0 when none even at 0. Without `lesion`
    (a control) every cluster is one; with it (bool, the maps' shape) only clusters not overlapping
    it. What a specificity-targeted threshold is calibrated on.

    Found from the top down (`steps` even steps, then `refine` bisections inside the step), not by
    bisection over the whole range: "a false-positive cluster exists" is not monotone in the
    threshold (lower down, clusters merge with the lesion's or fall under `min_size` apart)."""
    score = np.asarray(maps.prob if maps.space == "surface" else maps.prob.dataobj, dtype=float)
    top = float(score.max(initial=0.0))
    if top <= 0:
        return 0.0

    def false_cluster(t: float) -> bool:
        table, labels = clusters_of(det, maps, threshold=t)
        ids = table["cluster"].to_numpy(dtype=int)
        return bool(len(ids if lesion is None else ids[~np.isin(ids, np.unique(labels[lesion]))]))

    step = top / steps
    lo = next((t for t in np.arange(steps - 1, -1, -1) * step if false_cluster(float(t))), None)
    if lo is None:
        return 0.0
    hi = lo + step
    for _ in range(refine):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if false_cluster(mid) else (lo, mid)
    return float(lo)


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
