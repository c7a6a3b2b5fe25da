"""The encoder contract: one modality's batch `(B, *shape)` -> embedding `(B, D)`."""

from __future__ import annotations

from typing import ClassVar

import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.registry import Registry

ENCODERS: Registry[type[Encoder]] = Registry("encoder")


class Encoder(nn.Module):
    """Base of all encoders; a subclass registers itself with `class X(Encoder, name=..., kind=...)`.

    Encoders only ever see the rows of samples where their modality is present (the model selects
    them), so they may normalise per sample but must not mix samples (no BatchNorm: batch statistics
    would otherwise depend on which other patients happen to share the batch).
    """

    name: ClassVar[str]
    kind: ClassVar[str]

    def __init_subclass__(cls, name: str | None = None, kind: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            if kind is None:
                raise TypeError(f"encoder {name!r} must declare its modality kind")
            cls.name, cls.kind = name, kind
            ENCODERS.register(name, cls)

    def __init__(self, info: ModalityInfo, config: ModelConfig) -> None:
        super().__init__()
        self.info = info
        self.out_dim = config.embed_dim

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """`(B, *info.shape)` -> `(B, D)`."""
        raise NotImplementedError


def build_encoder(info: ModalityInfo, config: ModelConfig) -> Encoder:
    """The encoder that `config` names for `info.kind`, built for this modality."""
    name = config.encoder_for(info.kind)
    cls = ENCODERS[name]
    if cls.kind != info.kind:
        raise ValueError(f"modality {info.name!r} is {info.kind} data but encoder {name!r} encodes {cls.kind}")
    return cls(info, config)
