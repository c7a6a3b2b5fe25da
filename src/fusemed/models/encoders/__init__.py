"""Encoders, one family per modality kind, each `(B, *shape) -> (B, D)`; importing registers them."""

from __future__ import annotations

from fusemed.models.encoders.base import ENCODERS, Encoder, build_encoder
from fusemed.models.encoders.graph import (
    BrainNetCNNEncoder,
    DenseGCNEncoder,
    DenseGraphConvEncoder,
    EdgeEncoder,
)
from fusemed.models.encoders.surface import MeshChebEncoder, MeshGCNEncoder
from fusemed.models.encoders.tabular import LinearEncoder, MLPEncoder
from fusemed.models.encoders.volume import ConvEncoder, DenseNetEncoder, RegionalEncoder

__all__ = [
    "ENCODERS",
    "BrainNetCNNEncoder",
    "ConvEncoder",
    "DenseGCNEncoder",
    "DenseNetEncoder",
    "DenseGraphConvEncoder",
    "EdgeEncoder",
    "Encoder",
    "LinearEncoder",
    "MLPEncoder",
    "MeshChebEncoder",
    "MeshGCNEncoder",
    "RegionalEncoder",
    "build_encoder",
]
