"""Models: per-modality encoders, fusion strategies that accept any missing subset, task heads.

from fusemed.models import ModalityInfo, ModelConfig, TaskInfo, build_model
model = build_model(ModelConfig(fusion="attention"), modalities, TaskInfo("binary"))
logits = model(inputs, present)          # inputs {name: (B, ...)}, present (B, M) bool
loss = model.loss(logits, target)
"""

from __future__ import annotations

from fusemed.models.config import MODALITY_KINDS, TASK_KINDS, ModalityInfo, ModelConfig, TaskInfo
from fusemed.models.dropout import modality_dropout
from fusemed.models.encoders import ENCODERS, Encoder, build_encoder
from fusemed.models.fusion import FUSIONS, Fusion, fusion_table
from fusemed.models.heads import HEADS, Head
from fusemed.models.model import MultimodalModel, build_model

__all__ = [
    "ENCODERS",
    "FUSIONS",
    "HEADS",
    "MODALITY_KINDS",
    "TASK_KINDS",
    "Encoder",
    "Fusion",
    "Head",
    "ModalityInfo",
    "ModelConfig",
    "MultimodalModel",
    "TaskInfo",
    "build_encoder",
    "build_model",
    "fusion_table",
    "modality_dropout",
]
