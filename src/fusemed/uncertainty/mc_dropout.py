"""Monte-Carlo dropout: K stochastic forward passes of any trained `nn.Module`.

Only dropout layers are switched to train mode; batch norm and everything else stay in eval mode, so
the passes differ by the dropped units alone (Gal & Ghahramani 2016). Dropout applied functionally
(`F.dropout(x, training=self.training)` inside a module's `forward`) follows that module's own mode and
is therefore NOT sampled; use `nn.Dropout` layers in models meant for MC dropout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

_DROPOUT_TYPES = (nn.modules.dropout._DropoutNd,)


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The `nn.Dropout*` / `nn.AlphaDropout` layers of `model`."""
    return [m for m in model.modules() if isinstance(m, _DROPOUT_TYPES)]


class MCDropout:
    """Wrap a trained model; each call returns K stochastic passes stacked on a leading axis.

    Args:
        model: any `nn.Module` containing at least one dropout layer with p > 0.
        n_samples: K, the number of stochastic passes.
        seed: seeds the passes (`torch.random.fork_rng`, the global RNG is left untouched); None = unseeded.
        output: maps the model's output to a tensor `(B, out)` (e.g. `lambda o: o["logits"]`).

    Example:
        >>> probs = MCDropout(model, n_samples=20)(batch).softmax(-1)   # (20, B, C)
    """

    def __init__(
        self,
        model: nn.Module,
        n_samples: int = 20,
        seed: int | None = 0,
        output: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be ≥ 1; got {n_samples}")
        layers = dropout_layers(model)
        if not any(getattr(m, "p", 0.0) > 0 for m in layers):
            raise ValueError(
                f"{type(model).__name__} has no dropout layer with p > 0: MC dropout would return "
                "K identical passes (epistemic uncertainty 0). "
                "Use an ensemble, or add nn.Dropout to the model."
            )
        self.model = model
        self.n_samples = n_samples
        self.seed = seed
        self.output = output

    @torch.no_grad()
    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Run K passes; returns `(K, B, out)`. The model's train/eval modes are restored afterwards."""
        modes = {m: m.training for m in self.model.modules()}
        try:
            self.model.eval()
            for layer in dropout_layers(self.model):
                layer.train()
            with torch.random.fork_rng(enabled=self.seed is not None, devices=[]):
                if self.seed is not None:
                    torch.manual_seed(self.seed)
                passes = [self._forward(*args, **kwargs) for _ in range(self.n_samples)]
        finally:
            for module, mode in modes.items():
                module.training = mode
        return torch.stack(passes)

    def _forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = self.model(*args, **kwargs)
        return self.output(out) if self.output is not None else out
