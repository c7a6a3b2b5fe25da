"""The Lightning wrapper: one model, its loss, modality dropout, the optimiser and its schedule.

The module knows nothing of fusion strategies or detectors (no string branching on model type): it
calls ``model(inputs, present)`` and ``model.loss(output, target)`` (:class:`Trainable`) whatever the
model is: a fusion model, or a lesion detector's network seen through its objective
(:mod:`fusemed.diagnosis.training`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
from torch import nn

from fusemed.training.config import TrainConfig
from fusemed.training.data import Task


@dataclass(frozen=True)
class Slot:
    """One modality as the batches carry it: per-sample ``shape`` (no batch axis), ``mesh`` for surfaces."""

    name: str
    kind: str
    shape: tuple[int, ...]
    mesh: str | None = None


@runtime_checkable
class Trainable(Protocol):
    """What :class:`FusemedModule` trains. A batch is ``{"inputs": {name: (B, ...)}, "present": (B, M) bool,
    "target": any}``; ``forward`` maps inputs and presence to an output, ``loss`` that output and the
    target to a scalar."""

    def __call__(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> Any: ...

    def loss(self, output: Any, target: Any) -> torch.Tensor: ...


#: ``(config, slots in present-column order, task) -> nn.Module`` with ``forward(inputs, present)``, ``loss``
ModelFactory = Callable[[TrainConfig, list[Slot], Task], nn.Module]


def build_model(config: TrainConfig, slots: list[Slot], task: Task) -> nn.Module:
    """Build the model through ``fusemed.models.build_model`` (the default factory)."""
    from fusemed.models import ModalityInfo, ModelConfig, TaskInfo
    from fusemed.models import build_model as build

    infos = [ModalityInfo(name=s.name, kind=s.kind, shape=tuple(s.shape),
                          **({"mesh": s.mesh} if s.mesh else {})) for s in slots]
    options = {**config.model.options, **config.uncertainty.build().network_options()}
    return build(ModelConfig(fusion=config.model.fusion, **options), infos,
                 TaskInfo(kind=task.kind, n_classes=task.n_classes))


def _moddrop(present: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """ModDrop through the models package's own implementation (keeps >= 1 modality per sample)."""
    from fusemed.models import modality_dropout

    return modality_dropout(present, p, generator)


class FusemedModule(L.LightningModule):
    """Trains a :class:`Trainable` ``model``; logs ``train_loss`` and ``val_loss`` (the early-stopping signal).

    ``moddrop`` drops whole modalities of a batch (keys of ``inputs`` in ``present`` column order);
    ``lr_power`` > 0 decays the learning rate as ``(1 - epoch / max_epochs) ** lr_power``.
    """

    def __init__(self, model: nn.Module, modalities: list[str], lr: float = 1e-3, weight_decay: float = 1e-4,
                 moddrop: float = 0.0, seed: int = 0,
                 moddrop_fn: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor] | None = None,
                 lr_power: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.modalities = list(modalities)
        self.save_hyperparameters({"lr": lr, "weight_decay": weight_decay, "moddrop": moddrop, "seed": seed,
                                   "modalities": list(modalities), "lr_power": lr_power})
        self._moddrop_fn = moddrop_fn or _moddrop
        self._generator = torch.Generator().manual_seed(seed)

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, present)

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        inputs, present = batch["inputs"], batch["present"]
        if stage == "train" and self.hparams.moddrop > 0:
            present = self._moddrop_fn(present.cpu(), self.hparams.moddrop, self._generator).to(present.device)
            inputs = {m: x * present[:, j].view(-1, *[1] * (x.dim() - 1)).to(x.dtype)
                      for j, (m, x) in enumerate(inputs.items())}
        output = self.model(inputs, present)
        loss = self.model.loss(output, batch["target"])
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True,
                 batch_size=present.shape[0], sync_dist=stage == "val")
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.hparams.lr,
                                      weight_decay=self.hparams.weight_decay)
        if not self.hparams.lr_power:
            return optimizer
        schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=self.trainer.max_epochs,
                                                         power=self.hparams.lr_power)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the ModDrop stream continues where it was after a resume
        checkpoint["moddrop_generator"] = self._generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "moddrop_generator" in checkpoint:
            self._generator.set_state(checkpoint["moddrop_generator"])
