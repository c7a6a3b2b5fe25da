"""Deep ensembles: K independently trained models (seeds, or the K cross-validation folds) as members.

The CV folds' models are a natural ensemble at prediction time on new subjects (`fusemed predict`); the
out-of-fold prediction of a training subject has only one member (its own fold's model), so epistemic
uncertainty there needs seeds or MC dropout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


class Ensemble:
    """Call K trained models on the same batch; returns `(K, B, out)`.

    Each member runs in eval mode under `torch.no_grad()`; its train/eval mode is restored afterwards.

    Args:
        members: the trained models (at least one).
        output: maps a model's output to a tensor `(B, out)` (e.g. `lambda o: o["logits"]`).
    """

    def __init__(self, members: Sequence[nn.Module], output: Callable[[Any], torch.Tensor] | None = None) -> None:
        if len(members) == 0:
            raise ValueError("an ensemble needs at least one member model")
        self.members = list(members)
        self.output = output

    def __len__(self) -> int:
        return len(self.members)

    @torch.no_grad()
    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        outs = []
        for model in self.members:
            mode = model.training
            model.eval()
            try:
                out = model(*args, **kwargs)
            finally:
                model.train(mode)
            outs.append(self.output(out) if self.output is not None else out)
        return torch.stack(outs)


def stack_members(member_outputs: Sequence[np.ndarray | torch.Tensor]) -> np.ndarray:
    """Stack per-member predictions of the same subjects, `K × (n, ...)` → `(K, n, ...)`.

    Use it for members predicted separately (e.g. each CV fold's model applied to a new cohort).
    """
    arrays = [np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m) for m in member_outputs]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members must predict the same subjects; got shapes {sorted(shapes)}")
    return np.stack(arrays)
