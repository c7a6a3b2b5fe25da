"""The fusion contract: per-stream embeddings + presence mask -> one fused vector per sample.

A fusion strategy sees `embeddings: {stream: (B, D)}` and `present: (B, S)` (columns in stream order)
and must give every sample a fused vector from whatever non-empty subset it has. Rows of a missing
stream are zeros when they come from `MultimodalModel`, but a strategy must not rely on that: it
replaces them (`torch.where`, never a multiplication that lets NaN through), so the data of a
missing modality can never reach the output.

Most strategies fuse after the per-modality encoders. An input-level strategy (early fusion) changes
what gets encoded: it overrides `streams` (the encoder inputs it wants) and `prepare` (turns the
model inputs into those streams). The model calls both hooks for every strategy; nothing branches on
a strategy's name.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.registry import FUSIONS


class Fusion(nn.Module):
    """Base of all fusion strategies; a subclass registers itself with `class X(Fusion, name=...)`.

    Subclasses set `self.out_dim` (size of the fused vector) in `__init__` and implement `fuse`.
    """

    name: ClassVar[str]
    #: catalogue entries, one line each (what it does, what happens to a missing modality, reference)
    mechanism: ClassVar[str] = ""
    on_missing: ClassVar[str] = ""
    source: ClassVar[str] = ""

    def __init_subclass__(cls, name: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
            FUSIONS.register(name, cls)

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__()
        if not modalities:
            raise ValueError("a model needs at least one modality")
        names = [m.name for m in modalities]
        if len(set(names)) != len(names):
            raise ValueError(f"modality names must be unique, got {names}")
        self.modalities = list(modalities)
        self.embed_dim = config.embed_dim
        self.out_dim = config.embed_dim

    @property
    def streams(self) -> list[ModalityInfo]:
        """The encoder inputs this strategy wants, in `present` column order (default: the modalities)."""
        return self.modalities

    @property
    def stream_names(self) -> list[str]:
        return [s.name for s in self.streams]

    def prepare(self, inputs: dict[str, Tensor], present: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Model inputs and `present (B, M)` -> stream inputs and `present (B, S)`; identity by default."""
        return inputs, present

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:  # pragma: no cover
        """`{stream: (B, D)}`, `present (B, S)` -> fused `(B, out_dim)`."""
        raise NotImplementedError

    def forward(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        return self.fuse(embeddings, present)

    def stack(self, embeddings: dict[str, Tensor], present: Tensor, fill: Tensor | None = None) -> Tensor:
        """Embeddings as `(B, S, D)` in stream order, missing rows replaced by `fill` (`(S, D)`) or zeros."""
        stacked = torch.stack([embeddings[name] for name in self.stream_names], dim=1)
        if fill is None:
            fill = stacked.new_zeros(())
        else:
            fill = fill.unsqueeze(0).to(stacked.dtype)
        return torch.where(present.unsqueeze(-1), stacked, fill)


def fusion_table() -> str:
    """The registered strategies as a markdown table (name, mechanism, missing modality, source)."""
    lines = ["| name | mechanism | missing modality | source |", "|---|---|---|---|"]
    for name in sorted(FUSIONS):
        cls = FUSIONS[name]
        lines.append(f"| `{name}` | {cls.mechanism} | {cls.on_missing} | {cls.source} |")
    return "\n".join(lines)


def masked_mean(x: Tensor, present: Tensor) -> Tensor:
    """Mean of `x (B, S, *F)` over the present streams of each sample -> `(B, *F)`.

    Absent rows are replaced (`torch.where`), never multiplied by 0, so a NaN there cannot leak;
    `*F` is any feature shape (`(D,)` for embeddings, `(C, D, H, W)` for feature maps)."""
    mask = present.bool().reshape(*present.shape, *([1] * (x.dim() - 2)))
    total = torch.where(mask, x, x.new_zeros(())).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1).to(x.dtype)


def masked_moments(x: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (population) variance of `x (B, S, *F)` over the present streams -> two `(B, *F)`;
    variance 0 with one stream present. HeMIS's statistics, for embeddings and feature maps alike."""
    mean = masked_mean(x, present)
    return mean, masked_mean((x - mean.unsqueeze(1)) ** 2, present)


def mlp(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """The small projection every latent strategy ends with."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Dropout(dropout))
