"""Feature maps for the classical baselines: preprocessed multimodal samples -> one flat matrix.

Importing this package registers one extractor per modality kind.
"""

from __future__ import annotations

from fusemed.models.baselines.features.base import EXTRACTORS, ModalityFeatures
from fusemed.models.baselines.features.feature_map import FeatureMap
from fusemed.models.baselines.features.graph import GraphFeatures
from fusemed.models.baselines.features.surface import SurfaceFeatures
from fusemed.models.baselines.features.tabular import TabularFeatures
from fusemed.models.baselines.features.volume import VolumeFeatures

__all__ = [
    "EXTRACTORS",
    "FeatureMap",
    "GraphFeatures",
    "ModalityFeatures",
    "SurfaceFeatures",
    "TabularFeatures",
    "VolumeFeatures",
]
