"""Encoders, one family per modality kind, each `(B, *shape) -> (B, D)`; importing registers them."""

from __future__ import annotations

from fusemed.models.encoders.base import ENCODERS, Encoder, build_encoder
from fusemed.models.encoders.graph import DenseGCNEncoder, DenseGraphConvEncoder
from fusemed.models.encoders.surface import MeshChebEncoder, MeshGCNEncoder
from fusemed.models.encoders.tabular import MLPEncoder
from fusemed.models.encoders.volume import ConvEncoder, DenseNetEncoder

__all__ = [
    "ENCODERS",
    "ConvEncoder",
    "DenseGCNEncoder",
    "DenseNetEncoder",
    "DenseGraphConvEncoder",
    "Encoder",
    "MLPEncoder",
    "MeshChebEncoder",
    "MeshGCNEncoder",
    "build_encoder",
]
