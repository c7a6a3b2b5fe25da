"""Surface encoders for per-vertex features on a fixed mesh `(B, V, F)` (fsaverage5: V = 20484).

Vertex features are averaged onto the clusters of a coarse icosahedral mesh (`fusemed.models.mesh`,
level 3: 1284 clusters) and PyG message passing runs on that cluster graph, batched as a static graph
`(B, K, C)` with one shared `edge_index`. This keeps a forward pass on fsaverage5 in milliseconds.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn
from torch import Tensor
from torch_geometric.nn import ChebConv, GCNConv

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.encoders.base import Encoder
from fusemed.models.mesh import BUNDLED_MESHES, coarse_mesh


class _MeshEncoder(Encoder):
    """Pool vertices to clusters, two graph convolutions, mean and max pooling, linear map to D."""

    def make_conv(self, c_in: int, c_out: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__(info, config)
        n_vertices = BUNDLED_MESHES.get(info.mesh)
        if n_vertices is not None and info.shape[0] != n_vertices:
            raise ValueError(f"modality {info.name!r}: {info.shape[0]} vertices, but mesh {info.mesh} has {n_vertices}")
        coarse = coarse_mesh(info.mesh, config.surface_level)
        counts = torch.bincount(coarse.assign, minlength=coarse.n_clusters).clamp(min=1).float()
        # derived from the mesh, so not saved in checkpoints
        self.register_buffer("assign", coarse.assign, persistent=False)
        self.register_buffer("counts", counts, persistent=False)
        self.register_buffer("edge_index", coarse.edge_index, persistent=False)
        self.n_clusters = coarse.n_clusters
        self.conv1 = self.make_conv(info.shape[1], config.hidden)
        self.conv2 = self.make_conv(config.hidden, config.hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(config.dropout)
        self.project = nn.Linear(2 * config.hidden, config.embed_dim)

    def pool(self, x: Tensor) -> Tensor:
        """`(B, V, F)` -> cluster means `(B, K, F)`."""
        sums = x.new_zeros(x.shape[0], self.n_clusters, x.shape[2]).index_add_(1, self.assign, x)
        return sums / self.counts[:, None]

    def forward(self, x: Tensor) -> Tensor:
        """`(B, V, F)` -> `(B, D)`."""
        h = self.pool(x)
        h = self.drop(self.act(self.conv1(h, self.edge_index)))
        h = self.act(self.conv2(h, self.edge_index))
        return self.project(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=-1))


class MeshChebEncoder(_MeshEncoder, name="mesh_cheb", kind="surface"):
    """`ChebConv` (K=3 Chebyshev filters, Defferrard et al. 2016) on the coarse mesh."""

    cheb_order: ClassVar[int] = 3

    def make_conv(self, c_in: int, c_out: int) -> nn.Module:
        return ChebConv(c_in, c_out, K=self.cheb_order)


class MeshGCNEncoder(_MeshEncoder, name="mesh_gcn", kind="surface"):
    """`GCNConv` (Kipf & Welling 2017) on the coarse mesh."""

    def make_conv(self, c_in: int, c_out: int) -> nn.Module:
        return GCNConv(c_in, c_out)
