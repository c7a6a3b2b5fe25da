"""Fusion strategies, each accepting any non-empty subset of modalities per sample; importing registers."""

from __future__ import annotations

from fusemed.models.fusion.attention import AttentionFusion
from fusemed.models.fusion.base import FUSIONS, Fusion, fusion_table, masked_mean, masked_moments
from fusemed.models.fusion.concat import ConcatFusion
from fusemed.models.fusion.early import EarlyFusion
from fusemed.models.fusion.hemis import HeMISFusion
from fusemed.models.fusion.late import LateFusion
from fusemed.models.fusion.lmf import LMFFusion
from fusemed.models.fusion.poe import PoEFusion

__all__ = [
    "FUSIONS",
    "AttentionFusion",
    "ConcatFusion",
    "EarlyFusion",
    "Fusion",
    "HeMISFusion",
    "LMFFusion",
    "LateFusion",
    "PoEFusion",
    "fusion_table",
    "masked_mean",
    "masked_moments",
]
