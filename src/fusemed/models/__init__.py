"""Models: per-modality encoders, fusion strategies that accept any missing subset, task heads.

from fusemed.models import ModalityInfo, ModelConfig, TaskInfo, build_model
model = build_model(ModelConfig(fusion="attention"), modalities, TaskInfo("binary"))
logits = model(inputs, present)          # inputs {name: (B, ...)}, present (B, M) bool
loss = model.loss(logits, target)
"""

from __future__ import annotations

import lazy_loader

# lazy (SPEC 1): importing a submodule (e.g. a config) does not import torch, MONAI or Lightning
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["MODALITY_KINDS", "ModalityInfo", "ModelConfig", "TASK_KINDS", "TaskInfo"],
        "dropout": ["modality_dropout"],
        "encoders": ["ENCODERS", "Encoder", "build_encoder"],
        "fusion": ["FUSIONS", "Fusion", "fusion_table"],
        "heads": ["HEADS", "Head"],
        "model": ["MultimodalModel", "build_model"],
    },
)
