"""Concatenation of modality embeddings, with a learned embedding standing in for a missing one."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.fusion.base import Fusion, mlp


class ConcatFusion(Fusion, name="concat"):
    """`[e_1 | ... | e_M]` -> MLP, where a missing `e_m` is replaced by a learned vector `c_m`.

    The learned placeholder is what fusilli's concatenation lacks: the network learns one "not acquired"
    code per modality instead of reading zeros as a real measurement.
    """

    mechanism = "concatenated embeddings, then an MLP"
    on_missing = "learned placeholder embedding per modality"
    source = "fusilli `ConcatImageMapsTabularData`"

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__(modalities, config)
        n = len(self.streams)
        self.placeholder = nn.Parameter(torch.randn(n, config.embed_dim) * 0.02)
        self.project = mlp(n * config.embed_dim, config.embed_dim, config.dropout)

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        return self.project(self.stack(embeddings, present, fill=self.placeholder).flatten(1))
