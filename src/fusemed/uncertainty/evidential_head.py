"""The evidential head registered in the models' `HEADS` registry as "evidential".

`ModelConfig(head="evidential")` (set by `fusemed train --uncertainty evidential`) swaps the task's usual
classification head for this one. Kept apart from `evidential.py` so the uncertainty core does not import
the models package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fusemed.models.config import TaskInfo
from fusemed.models.heads import Head
from fusemed.uncertainty.evidential import evidential_loss


class EvidentialClassificationHead(Head, name="evidential"):
    """Dropout → Linear → softplus evidence; outputs log α `(B, C)` (C = 2 for a binary task).

    The KL term of the loss is annealed over `annealing_steps` optimisation steps (the head never sees
    the epoch number; Sensoy et al. anneal over 10 epochs).
    """

    annealing_steps = 100

    @staticmethod
    def output_size(task: TaskInfo) -> int:
        if task.kind not in ("binary", "multiclass"):
            raise ValueError(f"the evidential head classifies; a {task.kind!r} target needs its own head")
        return 2 if task.kind == "binary" else task.n_classes

    def __init__(self, in_dim: int, task: TaskInfo, dropout: float = 0.0) -> None:
        super().__init__(in_dim, task, dropout)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, z: Tensor) -> Tensor:
        """Fused `(B, in_dim)` → log α `(B, C)`; `softmax(log α)` is the Dirichlet mean."""
        return torch.log(F.softplus(self.linear(self.drop(z))) + 1.0)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.training:
            self.steps += 1
        y = target.reshape(-1).long()
        return evidential_loss(output, y, epoch=int(self.steps), annealing_epochs=self.annealing_steps)

    def predict(self, output: Tensor) -> Tensor:
        """P(class 1) `(B,)` for binary, class probabilities `(B, C)` for multiclass."""
        probs = torch.softmax(output, dim=-1)
        return probs[:, 1] if self.task.kind == "binary" else probs
