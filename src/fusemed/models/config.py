"""What a model is built from: the modalities it sees, the task it solves, and its hyperparameters.

`ModalityInfo` and `TaskInfo` describe the data (filled in by the data pipeline from the cohort);
`ModelConfig` is the user's choice of components, validated when it is created so that a misspelt
fusion or encoder name fails before any data is read.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MODALITY_KINDS = ("volume", "graph", "surface", "tabular")
TASK_KINDS = ("binary", "multiclass", "survival")
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


@functools.cache
def _reserved() -> frozenset[str]:
    """Attribute names of torch.nn.Module (a modality named like one cannot be a sub-module); torch is
    imported here, not when a config is parsed."""
    import torch.nn as nn

    return frozenset(dir(nn.Module()))


def _plain(value: object) -> str:
    """`ModalityKind.volume` (a str enum from `fusemed.cohort`) or "volume" -> "volume"."""
    return str(value.value) if isinstance(value, enum.Enum) else str(value)


@dataclass(frozen=True)
class ModalityInfo:
    """One modality as the model sees it.

    Args:
        name: modality name from the cohort spec (a module key, so letters, digits, `_`, `-`).
        kind: "volume" | "graph" | "surface" | "tabular".
        shape: one sample without the batch dim: volume `(1, X, Y, Z)`, graph `(N, N + F)`,
            surface `(V, F)`, tabular `(2F,)` (values then missing indicators).
        mesh: surface template (only "fsaverage5" is bundled with nilearn, so only it is supported).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    mesh: str = "fsaverage5"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _plain(self.kind))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if not _NAME.match(self.name) or self.name in _reserved():
            raise ValueError(
                f"modality name {self.name!r} cannot name a sub-module: use letters, digits, '_' or '-' "
                "and avoid torch.nn.Module attribute names"
            )
        if self.kind not in MODALITY_KINDS:
            raise ValueError(f"modality {self.name!r}: kind {self.kind!r} is not one of {MODALITY_KINDS}")
        expected_rank = {"volume": 4, "graph": 2, "surface": 2, "tabular": 1}[self.kind]
        if len(self.shape) != expected_rank or min(self.shape, default=0) < 0:
            raise ValueError(
                f"modality {self.name!r} ({self.kind}): shape {self.shape} should have {expected_rank} dims "
                "(volume (1, X, Y, Z), graph (N, N + F), surface (V, F), tabular (2F,))"
            )
        if self.kind == "graph" and self.shape[1] < self.shape[0]:
            raise ValueError(f"modality {self.name!r}: graph shape {self.shape} is not (N, N + F)")
        if self.kind == "tabular" and self.shape[0] % 2:
            raise ValueError(f"modality {self.name!r}: tabular width {self.shape[0]} is not 2F (values | flags)")


@dataclass(frozen=True)
class TaskInfo:
    """What the head predicts: 1 logit (binary), `n_classes` logits (multiclass), 1 log-risk (survival)."""

    kind: str
    n_classes: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _plain(self.kind))
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task kind {self.kind!r} is not one of {TASK_KINDS}")
        if self.kind == "multiclass" and self.n_classes < 2:
            raise ValueError(f"a multiclass task needs n_classes >= 2, got {self.n_classes}")


class ModelConfig(BaseModel):
    """Hyperparameters of a `MultimodalModel`; defaults are small enough to train on a laptop CPU."""

    model_config = ConfigDict(extra="forbid")

    fusion: str = "concat"
    embed_dim: int = Field(32, ge=2, description="size D of every modality embedding (B, D)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    volume_encoder: str = "cnn"
    graph_encoder: str = "dense_gcn"
    surface_encoder: str = "mesh_cheb"
    tabular_encoder: str = "mlp"
    volume_channels: tuple[int, ...] = Field((8, 16, 32), min_length=1, description="one stride-2 stage each")
    hidden: int = Field(
        32, ge=1, description="hidden width of graph, surface and tabular encoders (brainnetcnn: its N2G width)"
    )
    surface_level: Literal[2, 3, 4] = Field(
        3, description="icosahedron order of the coarse mesh the surface encoder runs on (3: 642/hemi)"
    )
    edge_rank: int = Field(
        0,
        ge=0,
        description="edge graph encoder: 0 = one linear map on the upper-triangle edge vector (N(N-1)/2 "
        "weights per output); r > 0 = a rank-r bilinear readout sum_r u_r^T A v_r (2rN weights per output)",
    )
    regional_grid: int = Field(
        4, ge=1, le=16, description="regional volume encoder: average-pool each volume to this grid per axis"
    )
    attention_heads: int = Field(4, ge=1)
    attention_layers: int = Field(2, ge=1)
    lmf_rank: int = Field(4, ge=1)
    poe_sample: bool = Field(True, description="poe: sample the joint Gaussian in training (mean in eval)")
    head: str | None = Field(None, description="a HEADS name replacing the task kind's head (e.g. evidential)")

    @field_validator("fusion")
    @classmethod
    def _known_fusion(cls, value: str) -> str:
        from fusemed.models.fusion import FUSIONS

        FUSIONS[value]  # raises with "did you mean"
        return value

    @model_validator(mode="after")
    def _known_encoders(self) -> ModelConfig:
        from fusemed.models.encoders import ENCODERS

        for kind in MODALITY_KINDS:
            name = self.encoder_for(kind)
            encoder = ENCODERS[name]
            if encoder.kind != kind:
                raise ValueError(f"{kind}_encoder={name!r} encodes {encoder.kind} data, not {kind}")
        if self.fusion == "attention" and self.embed_dim % self.attention_heads:
            raise ValueError(
                f"attention fusion: embed_dim={self.embed_dim} must be divisible by "
                f"attention_heads={self.attention_heads}"
            )
        return self

    def encoder_for(self, kind: str) -> str:
        """The configured encoder name for a modality kind."""
        return getattr(self, f"{kind}_encoder")
