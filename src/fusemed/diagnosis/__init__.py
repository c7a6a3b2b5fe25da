"""Lesion detection (epilepsy diagnosis): voxel and vertex detectors, clusters, detection metrics.

Public API: `train_detector`, `predict_detector`, `evaluate_detector` (run folders), the detector
registry `DETECTORS`, `DetectionCase`, `volume_clusters` / `surface_clusters`, `ClusterCalibrator`,
`detection_metrics`. See docs/diagnosis.md.
"""

from __future__ import annotations

from fusemed.diagnosis.api import evaluate_detector, load_detector, predict_detector, train_detector
from fusemed.diagnosis.clusters import ClusterCalibrator, surface_clusters, volume_clusters
from fusemed.diagnosis.data import DetectionCase, cases_from_cohort
from fusemed.diagnosis.detect import detect
from fusemed.diagnosis.detectors import DETECTORS, DetectionMaps, Detector, NotFittedError, get_detector
from fusemed.diagnosis.grid import CommonGrid
from fusemed.diagnosis.metrics import SubjectDetection, detection_metrics, split_metrics

__all__ = ["DETECTORS", "ClusterCalibrator", "CommonGrid", "DetectionCase", "DetectionMaps", "Detector",
           "NotFittedError", "SubjectDetection", "cases_from_cohort", "detect", "detection_metrics",
           "evaluate_detector", "get_detector", "load_detector", "predict_detector", "split_metrics",
           "surface_clusters", "train_detector", "volume_clusters"]
