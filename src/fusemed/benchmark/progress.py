"""A Lightning callback that turns epochs of every fold of one cell into one progress count."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning.pytorch.callbacks import Callback


class EpochProgress(Callback):
    """Reports ``(epochs done, epochs planned)`` over all folds of one training run.

    Early stopping ends a fold before its planned epochs: the count then jumps to the next fold's start.
    """

    def __init__(self, report: Callable[[int, int], None], folds: int, epochs: int) -> None:
        self.report, self.folds, self.epochs, self.fold = report, folds, epochs, -1

    def on_fit_start(self, trainer: Any, module: Any) -> None:
        self.fold += 1
        total = self.folds * self.epochs
        self.report(min(self.fold * self.epochs, total), total)

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        total = self.folds * self.epochs
        self.report(min(self.fold * self.epochs + trainer.current_epoch + 1, total), total)
