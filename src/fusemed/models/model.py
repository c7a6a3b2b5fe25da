"""`MultimodalModel`: encoders + fusion + head, nothing else; `build_model` assembles it from a config."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig, TaskInfo
from fusemed.models.encoders import build_encoder
from fusemed.models.fusion import FUSIONS
from fusemed.models.heads import HEADS


class MultimodalModel(nn.Module):
    """Encode each present modality, fuse whatever subset each sample has, predict.

    Call `model(inputs, present)`: `inputs[name]` is `(B, *info.shape)` for every modality (a missing
    sample's slot may hold anything, it is never read), `present` is `(B, M)` bool in the order of
    `modalities`. Returns `(B, out)`: 1 logit (binary), `n_classes` logits (multiclass) or 1 log-risk
    (survival). Encoders run only on the rows where their input is present; every parameter takes part
    in every forward pass (with a zero gradient when unused), so DDP works without
    `find_unused_parameters`.
    """

    def __init__(self, config: ModelConfig, modalities: list[ModalityInfo], task: TaskInfo) -> None:
        super().__init__()
        self.config, self.modalities, self.task = config, list(modalities), task
        self.fusion = FUSIONS[config.fusion](self.modalities, config)
        self.encoders = nn.ModuleDict({s.name: build_encoder(s, config) for s in self.fusion.streams})
        self.head = HEADS[config.head or task.kind](self.fusion.out_dim, task, config.dropout)

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    def check(self, inputs: dict[str, Tensor], present: Tensor) -> None:
        """Raise a ValueError naming the modality or sample when the batch breaks the contract."""
        names = self.modality_names
        if present.ndim != 2 or present.shape[1] != len(names):
            raise ValueError(f"present must be (B, {len(names)}) with columns {names}, got {tuple(present.shape)}")
        if present.dtype != torch.bool:
            raise ValueError(f"present must be a bool tensor, got {present.dtype}")
        empty = (~present.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"samples {empty} of the batch have no modality present; each needs one or more")
        for m in self.modalities:
            if m.name not in inputs:
                raise ValueError(f"inputs lack modality {m.name!r} (give a zero-filled slot when missing)")
            x = inputs[m.name]
            if tuple(x.shape) != (present.shape[0], *m.shape):
                raise ValueError(
                    f"modality {m.name!r} ({m.kind}): expected shape (B={present.shape[0]}, *{m.shape}), "
                    f"got {tuple(x.shape)}"
                )

    def encode(self, inputs: dict[str, Tensor], present: Tensor) -> dict[str, Tensor]:
        """`{stream: (B, D)}`, encoders applied to present rows only; missing rows are zeros."""
        embeddings = {}
        for j, name in enumerate(self.fusion.stream_names):  # `present` columns follow the streams
            encoder, x = self.encoders[name], inputs[name]
            rows = present[:, j].nonzero().flatten()
            if rows.numel():
                encoded = encoder(x.index_select(0, rows))  # dtype may differ from x under autocast
                out = encoded.new_zeros(x.shape[0], encoded.shape[1]).index_copy(0, rows, encoded)
            else:  # keep the encoder in the graph (zero gradient) so DDP needs no find_unused_parameters
                unused = sum(p.sum() for p in encoder.parameters()) * 0.0
                out = x.new_zeros(x.shape[0], encoder.out_dim) + unused
            embeddings[name] = out
        return embeddings

    def forward(self, inputs: dict[str, Tensor], present: Tensor) -> Tensor:
        self.check(inputs, present)
        streams, stream_present = self.fusion.prepare(inputs, present)
        fused = self.fusion(self.encode(streams, stream_present), stream_present)
        return self.head(fused)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The head's loss (BCE with logits / cross-entropy / Cox partial likelihood), a scalar."""
        return self.head.loss(output, target)

    def predict(self, output: Tensor) -> Tensor:
        """Raw output -> probability of class 1 `(B,)`, class probabilities `(B, C)` or risk `(B,)`."""
        return self.head.predict(output)


def build_model(config: ModelConfig, modalities: list[ModalityInfo], task: TaskInfo) -> MultimodalModel:
    """The model `config` describes for these modalities (in `present` column order) and this task."""
    return MultimodalModel(config, modalities, task)
