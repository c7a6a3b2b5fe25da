"""Tabular encoders: clinical values `(B, 2F)` = [standardised values, NaN -> 0 | missing indicators].

`linear` is a (dropout-regularised) linear model, as good as logistic regression at small n; `mlp` adds
a hidden layer for interactions once there are enough patients to learn them.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.encoders.base import Encoder


class MLPEncoder(Encoder, name="mlp", kind="tabular"):
    """Two-layer MLP; the indicators let it learn what "not measured" means for each column."""

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        self.net = nn.Sequential(
            nn.Linear(info.shape[0], config.hidden),
            nn.LayerNorm(config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.embed_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        """`(B, 2F)` -> `(B, D)`."""
        return self.net(x)


class LinearEncoder(Encoder, name="linear", kind="tabular"):
    """Dropout, then one `Linear(2F, D)`: each embedding coordinate is a linear score of the values and
    their missing indicators (an indicator's weight is what "not measured" shifts the score by)."""

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        self.drop = nn.Dropout(config.dropout)
        self.project = nn.Linear(info.shape[0], config.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, 2F)` -> `(B, D)`."""
        return self.project(self.drop(x))
