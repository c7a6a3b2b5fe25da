"""Graph encoders for connectomes `(B, N, N + F)` = [adjacency | node features].

A connectome has a fixed, small node set (tens to hundreds of regions) and a dense weighted
adjacency, so dense convolutions on `(B, N, N)` beat sparse message passing here. Node features are
each node's whole row (its connectivity profile, plus any extra features): the usual choice for
connectomes without node attributes. Message passing uses |adjacency| (correlations can be negative).

Message passing averages a node's row with its neighbours' rows, so a signal carried by one edge
weight is diluted by every other edge of its two nodes. Two encoders read the edges themselves: `edge`
(a linear or low-rank bilinear readout of the signed adjacency, a linear model on the edge vector: the
choice at small n) and `brainnetcnn` (Kawahara et al. 2017, cross-shaped edge filters).
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


class EdgeEncoder(Encoder, name="edge", kind="graph"):
    """A linear model on the edges: the upper-triangle edge vector (diagonal excluded) and, when F > 0,
    the mean of each node feature over nodes, through dropout and one linear map to D.

    `config.edge_rank = 0`: `Linear(N(N-1)/2 + F, D)` (1.8M weights for N = 332, D = 32).
    `config.edge_rank = r > 0`: output `d` is `sum_r u_dr^T A v_dr` over the off-diagonal adjacency,
    a rank-r factorisation of the weight matrix (2rN weights per output), plus a linear map of the feature
    means. No normalisation: every sample is encoded alone.
    """

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        n, self.n_features = info.shape[0], info.shape[1] - info.shape[0]
        if n < 2:
            raise ValueError(f"modality {info.name!r}: the edge encoder needs at least 2 nodes, got {n}")
        self.n_nodes, self.rank = n, config.edge_rank
        rows, cols = torch.triu_indices(n, n, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("off_diagonal", 1.0 - torch.eye(n), persistent=False)
        self.drop = nn.Dropout(config.dropout)
        d = config.embed_dim
        if self.rank == 0:
            self.project = nn.Linear(len(rows) + self.n_features, d)
        else:
            # u^T A v has standard deviation ~ std(A) when u, v have entries of size N^(-1/2)
            self.u = nn.Parameter(torch.randn(n, d * self.rank) / n**0.5)
            self.v = nn.Parameter(torch.randn(n, d * self.rank) / n**0.5)
            self.features = nn.Linear(self.n_features, d) if self.n_features else None
            self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x: Tensor) -> Tensor:
        """`(B, N, N + F)` -> `(B, D)`."""
        adj, feats = x[..., : self.n_nodes], x[..., self.n_nodes :].mean(dim=1)  # (B, N, N), (B, F)
        if self.rank == 0:
            edges = adj[:, self.rows, self.cols]  # (B, N(N-1)/2)
            return self.project(self.drop(torch.cat([edges, feats], dim=-1)))
        adj = self.drop(adj * self.off_diagonal)
        av = adj @ self.v  # (B, N, D * r)
        z = (self.u * av).sum(dim=1).view(x.shape[0], -1, self.rank).sum(dim=-1) + self.bias  # (B, D)
        return z if self.features is None else z + self.features(self.drop(feats))


class BrainNetCNNEncoder(Encoder, name="brainnetcnn", kind="graph"):
    """BrainNetCNN (Kawahara et al., NeuroImage 2017) on the signed adjacency, with small widths.

    Two edge-to-edge layers (E2E, `hidden/4` channels: edge (i, j) <- a 1-D filter over row i plus one over
    column j, the cross-shaped filter), edge-to-node (E2N, `hidden/2`: a filter over each row), node-to-
    graph (N2G, `hidden`: a filter over the nodes), LeakyReLU(0.33) and dropout, then a linear map to D.
    Node features (F > 0) enter linearly at the node level, added to the E2N output. No normalisation.
    """

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        n, f = info.shape[0], info.shape[1] - info.shape[0]
        self.n_nodes = n
        e2e, e2n, n2g = max(1, config.hidden // 4), max(1, config.hidden // 2), config.hidden
        self.e2e = nn.ModuleList([_EdgeToEdge(1, e2e, n), _EdgeToEdge(e2e, e2e, n)])
        self.e2n = nn.Conv2d(e2e, e2n, kernel_size=(1, n))  # (B, C, N, N) -> (B, e2n, N, 1)
        self.node_features = nn.Linear(f, e2n, bias=False) if f else None
        self.n2g = nn.Conv2d(e2n, n2g, kernel_size=(n, 1))  # (B, e2n, N, 1) -> (B, n2g, 1, 1)
        self.act = nn.LeakyReLU(0.33)
        self.drop = nn.Dropout(config.dropout)
        self.project = nn.Linear(n2g, config.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, N, N + F)` -> `(B, D)`."""
        h = x[:, None, :, : self.n_nodes]  # (B, 1, N, N)
        for layer in self.e2e:
            h = self.act(layer(h))  # (B, e2e, N, N)
        h = self.e2n(h)  # (B, e2n, N, 1)
        if self.node_features is not None:
            h = h + self.node_features(x[..., self.n_nodes :]).transpose(1, 2).unsqueeze(-1)
        h = self.drop(self.act(h))
        h = self.drop(self.act(self.n2g(h))).flatten(1)  # (B, n2g)
        return self.project(h)


class _EdgeToEdge(nn.Module):
    """E2E: `(B, C_in, N, N) -> (B, C_out, N, N)`, out[i, j] = row filter . A[i, :] + column filter . A[:, j]."""

    def __init__(self, c_in: int, c_out: int, n: int) -> None:
        super().__init__()
        self.row = nn.Conv2d(c_in, c_out, kernel_size=(1, n))  # (B, C, N, 1)
        self.col = nn.Conv2d(c_in, c_out, kernel_size=(n, 1), bias=False)  # (B, C, 1, N)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C_in, N, N)` -> `(B, C_out, N, N)` (the two 1-D responses broadcast into a cross)."""
        return self.row(x) + self.col(x)
