"""Heads: the last affine layer, the task's loss, and the map from raw output to a prediction.

One head per task kind, registered by that kind ("binary", "multiclass", "survival"), so
`HEADS[task.kind]` picks it. The head is always affine (`Dropout` then `Linear`): late fusion relies on
it to turn an average of per-modality decision vectors into an average of per-modality logits.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torchsurv.loss.cox import neg_partial_log_likelihood

from fusemed.models.config import TaskInfo
from fusemed.models.registry import Registry

HEADS: Registry[type[Head]] = Registry("head")


class Head(nn.Module):
    """Base of all heads; a subclass registers itself with `class X(Head, name=<task kind>)`."""

    name: ClassVar[str]

    def __init_subclass__(cls, name: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
            HEADS.register(name, cls)

    def __init__(self, in_dim: int, task: TaskInfo, dropout: float = 0.0) -> None:
        super().__init__()
        self.task = task
        self.out_dim = self.output_size(task)
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, self.out_dim)

    @staticmethod
    def output_size(task: TaskInfo) -> int:
        return 1

    def forward(self, z: Tensor) -> Tensor:
        """Fused `(B, in_dim)` -> raw output `(B, out_dim)` (logits or log-risk)."""
        return self.linear(self.drop(z))

    def loss(self, output: Tensor, target: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Scalar training loss of raw `output (B, out_dim)` against `target`."""
        raise NotImplementedError

    def predict(self, output: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Raw output -> what goes into predictions.csv (probabilities or a risk score)."""
        raise NotImplementedError


class BinaryHead(Head, name="binary"):
    """One logit; binary cross-entropy with logits. `target`: (B,) or (B, 1) of 0/1."""

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(output.reshape(-1), target.reshape(-1).to(output.dtype))

    def predict(self, output: Tensor) -> Tensor:
        """Probability of class 1, `(B,)`."""
        return torch.sigmoid(output.reshape(-1))


class MulticlassHead(Head, name="multiclass"):
    """`n_classes` logits; cross-entropy. `target`: (B,) class indices."""

    @staticmethod
    def output_size(task: TaskInfo) -> int:
        return task.n_classes

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(output, target.reshape(-1).long())

    def predict(self, output: Tensor) -> Tensor:
        """Class probabilities `(B, n_classes)`."""
        return torch.softmax(output, dim=-1)


class SurvivalHead(Head, name="survival"):
    """One log relative hazard; Cox negative partial log-likelihood (torchsurv, Efron ties).

    `target`: `(B, 2)` = [time, event] (event 1 = observed), or a `(time, event)` pair of `(B,)` tensors.
    The partial likelihood is undefined without an event (or with one sample): such a batch gives a zero
    loss that is still attached to the graph, so `backward()` works and changes nothing.
    """

    def loss(self, output: Tensor, target: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        if isinstance(target, (tuple, list)):
            time, event = target
        else:
            if target.ndim != 2 or target.shape[1] != 2:
                raise ValueError(f"survival target must be (B, 2) = [time, event], got shape {tuple(target.shape)}")
            time, event = target[:, 0], target[:, 1]
        log_hz = output.reshape(-1).float()  # the partial likelihood sums exponentials: keep fp32
        event = event.reshape(-1).bool()
        if log_hz.numel() < 2 or not bool(event.any()):
            return log_hz.sum() * 0.0
        time = time.reshape(-1).to(log_hz.dtype)
        with warnings.catch_warnings():  # ties are expected (days), Efron is our deliberate choice
            warnings.filterwarnings("ignore", message="Ties in `time` detected")
            return neg_partial_log_likelihood(log_hz, event, time, ties_method="efron")

    def predict(self, output: Tensor) -> Tensor:
        """Risk score (log relative hazard, higher = earlier event), `(B,)`."""
        return output.reshape(-1)
