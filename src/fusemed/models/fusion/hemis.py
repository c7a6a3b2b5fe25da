"""HeMIS: the mean and variance of the modality embeddings over whichever modalities are present."""

from __future__ import annotations

import torch
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.fusion.base import Fusion, masked_moments, mlp


class HeMISFusion(Fusion, name="hemis"):
    """Havaei et al., MICCAI 2016: `[mean_m e_m | var_m e_m]` over present `m` (variance 0 with one
    modality), then an MLP. The statistics are defined for any non-empty subset, so nothing is imputed.
    """

    mechanism = "mean and variance of the embeddings across modalities, then an MLP"
    on_missing = "statistics over the present ones only"
    source = "Havaei et al., MICCAI 2016"

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__(modalities, config)
        self.project = mlp(2 * config.embed_dim, config.embed_dim, config.dropout)

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        mean, var = masked_moments(self.stack(embeddings, present), present)
        return self.project(torch.cat([mean, var], dim=-1))
