"""Late fusion: one predictor per modality, their logits averaged over the present modalities."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.fusion.base import Fusion, masked_mean


class LateFusion(Fusion, name="late"):
    """Each modality gets its own decision branch `h_m = MLP_m(e_m)`; the output is the head applied to
    the mean of `h_m` over present modalities. The head is affine (`W h + b`), so
    `W mean_m(h_m) + b = mean_m(W h_m + b)`: exactly the average of the per-modality logits, with the
    last linear layer shared (no loss of capacity: each `MLP_m` ends in its own free linear map).
    Modalities never interact before the decision, which is what makes this the late-fusion baseline.
    """

    mechanism = "one decision branch per modality, logits averaged"
    on_missing = "average over the present ones only"
    source = "IBM uncertainty-weighted late fusion (ISBI 2021)"

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__(modalities, config)
        d = config.embed_dim
        self.branches = nn.ModuleDict(
            {
                m.name: nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, d))
                for m in modalities
            }
        )

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        decisions = torch.stack([self.branches[name](embeddings[name]) for name in self.stream_names], dim=1)
        return masked_mean(decisions, present)
