"""How a detector's network trains: samples drawn per epoch, handed to the shared Lightning fit.

Detectors train on random draws (class-balanced patches, siamese patch pairs, subjects in random order)
rather than on a fixed dataset. :class:`EpochSamples` turns a detector's ``draw(rng)`` into Lightning
loaders, and :func:`train_net` trains the net through :func:`fusemed.training.fit.fit_member`, the
function prognosis uses: devices, DDP, mixed precision, checkpoints and resume come from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fusemed.training.config import DeviceConfig, TrainerConfig
from fusemed.training.fit import fit_member

#: ``rng -> {"inputs": {name: (N, ...)}, "present": (N, M) bool, "target": (N, ...) or a dict of them}``
Draw = Callable[[np.random.Generator], dict[str, Any]]


def _row(tree: Any, i: int) -> Any:
    """Row ``i`` of every tensor of a nested dict (what the default collate stacks back)."""
    return {k: _row(v, i) for k, v in tree.items()} if isinstance(tree, dict) else tree[i]


class _Rows(Dataset):
    """Rows of a drawn epoch in the order ``order`` (the draw's own permutation, not the loader's)."""

    def __init__(self, tree: dict[str, Any], order: np.ndarray) -> None:
        self.tree, self.order = tree, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> Any:
        return _row(self.tree, int(self.order[i]))


class EpochSamples(L.LightningDataModule):
    """The training samples of epoch ``e`` drawn by ``draw`` from a generator seeded by ``(seed, e)`` alone.

    Why: a resumed run then draws exactly what an uninterrupted one would, with no sampler state to
    save, and every DDP process draws the same epoch (the distributed sampler splits it).
    """

    #: asks :func:`~fusemed.training.fit.fit_member` to rebuild the loader every epoch
    redraws = True

    def __init__(self, draw: Draw, batch_size: int, seed: int, num_workers: int = 0) -> None:
        super().__init__()
        self.draw, self.batch_size, self.seed, self.num_workers = draw, batch_size, seed, num_workers

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        rng = np.random.default_rng([self.seed, epoch])
        tree = self.draw(rng)
        rows = _Rows(tree, rng.permutation(len(tree["present"])))
        # the order is the draw's, not a sampler's: Lightning may start a loader's iterator more than once
        # (on resume), and each start would advance a shuffling generator; this one only seeds workers
        workers = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        return DataLoader(rows, batch_size=self.batch_size, shuffle=False, generator=workers,
                          num_workers=self.num_workers)


def train_net(objective: nn.Module, draw: Draw, folder: Path, device: DeviceConfig, *, seed: int,
              modalities: Sequence[str], epochs: int, batch_size: int, lr: float, weight_decay: float = 0.0,
              lr_power: float = 0.0, callbacks: Sequence[Callback] = ()) -> nn.Module:
    """Train ``objective`` (a :class:`fusemed.training.module.Trainable` around a detector's net) for
    ``epochs`` on fresh draws each epoch; checkpoints in ``folder`` (rerun: resumes from ``last.ckpt``).

    Returns the objective on CPU in eval mode, with the last epoch's weights (no validation split:
    the detector's threshold is calibrated on held-out subjects afterwards).
    """
    run = TrainerConfig(**device.model_dump(), epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay)
    meta = {"modalities": list(modalities), "seed": seed, "epochs": epochs, "lr": lr}
    return fit_member(run, objective, EpochSamples(draw, batch_size, seed, run.num_workers), Path(folder), seed,
                      meta, lr_power=lr_power, callbacks=callbacks)


class SegmentationObjective(nn.Module):
    """A lesion-segmentation net as the shared module trains it: ``net(inputs["x"], present)`` scored by
    DiceFocal against the lesion mask (sigmoid logits; Dice and focal terms weighted 1:1, gamma 2), the
    loss against the extreme imbalance of small lesions."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        from monai.losses import DiceFocalLoss

        self.net = net
        self.dice_focal = DiceFocalLoss(sigmoid=True, gamma=2.0, lambda_dice=1.0, lambda_focal=1.0)

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.net(inputs["x"], present)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_focal(output, target)
