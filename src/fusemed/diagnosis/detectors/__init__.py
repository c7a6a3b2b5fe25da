"""Lesion detectors, registered by name in `DETECTORS` (importing this package registers them all)."""

from __future__ import annotations

from fusemed.diagnosis.detectors.base import DETECTORS, DetectionMaps, Detector, NotFittedError, get_detector
from fusemed.diagnosis.detectors.fusion import VolumeSurfaceDetector
from fusemed.diagnosis.detectors.reconstruction import ReconstructionDetector
from fusemed.diagnosis.detectors.siamese import SiameseOCSVMDetector
from fusemed.diagnosis.detectors.surface import SurfaceGNNDetector
from fusemed.diagnosis.detectors.unsupervised import ZScoreDetector
from fusemed.diagnosis.detectors.voxelnet import HeMISDetector, UNetDetector

__all__ = ["DETECTORS", "DetectionMaps", "Detector", "HeMISDetector", "NotFittedError", "ReconstructionDetector",
           "SiameseOCSVMDetector", "SurfaceGNNDetector", "UNetDetector", "VolumeSurfaceDetector", "ZScoreDetector",
           "get_detector"]
