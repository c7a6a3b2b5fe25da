"""Graph encoders for connectomes `(B, N, N + F)` = [adjacency | node features], dense PyG convolutions.

A connectome has a fixed, small node set (tens to hundreds of regions) and a dense weighted
adjacency, so dense convolutions on `(B, N, N)` beat sparse message passing here. Node features are
each node's whole row (its connectivity profile, plus any extra features): the usual choice for
connectomes without node attributes. Message passing uses |adjacency| (correlations can be negative).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn
from torch import Tensor
from torch_geometric.nn import DenseGCNConv, DenseGraphConv

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.encoders.base import Encoder


class _DenseGraphEncoder(Encoder):
    """Two dense graph convolutions, then mean and max pooling over nodes, then a linear map to D."""

    conv: ClassVar[type[nn.Module]]

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        self.n_nodes = info.shape[0]
        self.conv1 = self.conv(info.shape[1], config.hidden)
        self.conv2 = self.conv(config.hidden, config.hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(config.dropout)
        self.project = nn.Linear(2 * config.hidden, config.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, N, N + F)` -> `(B, D)`."""
        adj = x[..., : self.n_nodes].abs()
        h = self.drop(self.act(self.conv1(x, adj)))
        h = self.act(self.conv2(h, adj))
        return self.project(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=-1))


class DenseGCNEncoder(_DenseGraphEncoder, name="dense_gcn", kind="graph"):
    """`DenseGCNConv` (Kipf & Welling, symmetric-normalised adjacency with self-loops)."""

    conv = DenseGCNConv


class DenseGraphConvEncoder(_DenseGraphEncoder, name="dense_graphconv", kind="graph"):
    """`DenseGraphConv` (Morris et al. 2019: separate weights for self and neighbour sums)."""

    conv = DenseGraphConv
