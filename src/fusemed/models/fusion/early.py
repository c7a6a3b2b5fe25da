"""Early fusion: the volumes become channels of one input, encoded by one joint volume encoder."""

from __future__ import annotations

import torch
from torch import Tensor

from fusemed.models.config import ModalityInfo, ModelConfig
from fusemed.models.fusion.base import Fusion, mlp

STACK = "volume_stack"


class EarlyFusion(Fusion, name="early"):
    """Stack the volumes as channels on their common grid, a missing one zero-filled, plus one presence
    channel per volume `(B, 2V, X, Y, Z)`, through one volume encoder; the other modalities through their
    own encoders, zero-filled when missing; then concatenate everything with the presence flags.

    This is the nnU-Net / ivadomed baseline: the network always sees every channel, so it must learn
    what an all-zero channel means (ModDrop in training teaches it).
    """

    mechanism = (
        "volumes stacked as channels on the common grid + presence channels, one joint volume encoder; "
        "other modalities encoded and concatenated with presence flags"
    )
    on_missing = "zero-filled channel or embedding + presence flag"
    source = "ivadomed input dropout; nnU-Net cannot run on fewer channels (nnUNet#513)"

    def __init__(self, modalities: list[ModalityInfo], config: ModelConfig) -> None:
        super().__init__(modalities, config)
        self.volume_idx = [i for i, m in enumerate(modalities) if m.kind == "volume"]
        self.other_idx = [i for i, m in enumerate(modalities) if m.kind != "volume"]
        volumes = [modalities[i] for i in self.volume_idx]
        if any(m.name == STACK for m in modalities):
            raise ValueError(f"early fusion uses the stream name {STACK!r}; rename that modality")
        grids = {m.shape[1:] for m in volumes}
        if len(grids) > 1:
            named = {m.name: m.shape[1:] for m in volumes}
            raise ValueError(f"early fusion stacks volumes as channels, so they need one grid; got {named}")
        self._streams = [modalities[i] for i in self.other_idx]
        if volumes:
            stack = ModalityInfo(STACK, "volume", (2 * len(volumes), *volumes[0].shape[1:]))
            self._streams.insert(0, stack)
        n_streams = len(self._streams)
        self.project = mlp(n_streams * config.embed_dim + n_streams, config.embed_dim, config.dropout)

    @property
    def streams(self) -> list[ModalityInfo]:
        return self._streams

    def prepare(self, inputs: dict[str, Tensor], present: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Build the `(B, 2V, X, Y, Z)` stack; its presence column is "any volume present"."""
        if not self.volume_idx:
            return inputs, present
        channels, flags = [], []
        for i in self.volume_idx:
            x = inputs[self.modalities[i].name]
            here = present[:, i].view(-1, 1, 1, 1, 1)
            channels.append(torch.where(here, x, x.new_zeros(())))
            flags.append(here.to(x.dtype).expand_as(x))
        streams = {self.modalities[i].name: inputs[self.modalities[i].name] for i in self.other_idx}
        streams[STACK] = torch.cat(channels + flags, dim=1)
        stack_present = present[:, self.volume_idx].any(dim=1, keepdim=True)
        return streams, torch.cat([stack_present, present[:, self.other_idx]], dim=1)

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        stacked = self.stack(embeddings, present).flatten(1)
        return self.project(torch.cat([stacked, present.to(stacked.dtype)], dim=1))
