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


def clusters_of(det: Detector, maps: DetectionMaps,
                calibrator: ClusterCalibrator | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Cluster table (with `confidence` when a calibrator is given) and label map of `maps`."""
    if maps.space == "surface":
        mesh = det.mesh
        table, labels = surface_clusters(np.asarray(maps.prob), mesh.adjacency, mesh.coords, det.threshold_,
                                         int(det.min_size))
    else:
        table, labels = volume_clusters(np.asarray(maps.prob.dataobj), maps.prob.affine, det.threshold_,
                                        det.min_size)
    if calibrator is not None and len(table):
        table["confidence"] = calibrator(table["peak_score"].to_numpy())
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


def fit_calibrator(det: Detector, cases: list[DetectionCase], method: str = "isotonic") -> ClusterCalibrator:
    """Fit peak score -> P(cluster overlaps a lesion) on the clusters of held-out `cases`."""
    peaks, hits = [], []
    for case in cases:
        _, rec = detect(det, case)
        peaks.extend(rec.clusters["peak_score"].tolist())
        hits.extend(rec.hits().astype(float).tolist())
    return ClusterCalibrator(method).fit(np.asarray(peaks), np.asarray(hits))
