"""Uncertainty methods as plug-ins: how a method's members are trained, how they predict.

A method is one class registered by name (``class Mine(UncertaintyMethod, name="mine")``); the training
pipeline asks it three things and never branches on its name:

* :meth:`network_options` — what the network needs (the evidential head);
* :meth:`n_networks` — how many networks a fold trains (deep ensembles: several seeds);
* :meth:`forward` — how trained networks predict a batch: ``(inputs, present) -> (K, B, C)`` logits, through
  the wrappers this package exports (:class:`~fusemed.uncertainty.MCDropout`,
  :class:`~fusemed.uncertainty.Ensemble`);
* :meth:`members` — how those logits become K probability members for the post-hoc step (identity, or
  Dirichlet draws for an evidential head).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # torch is imported by the hooks, not when a config names a method
    import torch
    from torch import nn

#: ``(inputs, present) -> (K, B, C)`` logits of K members
Forward = Callable[["dict[str, torch.Tensor]", "torch.Tensor"], "torch.Tensor"]

METHODS: dict[str, type[UncertaintyMethod]] = {}


class UncertaintyMethod:
    """No epistemic uncertainty: one network, one deterministic pass (the base every method refines)."""

    name: ClassVar[str]
    #: True when the method only makes sense for a network (a classical baseline is refused with it)
    needs_network: ClassVar[bool] = False

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
            METHODS[name] = cls

    def __init__(self, config: Any) -> None:
        self.config = config  # fusemed.uncertainty.config.UncertaintyConfig

    def network_options(self) -> dict[str, Any]:
        """ModelConfig keys this method imposes on the network."""
        return {}

    def n_networks(self) -> int:
        """Networks trained per fold (different seeds)."""
        return 1

    def forward(self, networks: Sequence[nn.Module], seed: int) -> Forward:
        """How the fold's trained networks predict a batch."""
        from fusemed.uncertainty.ensemble import Ensemble

        return Ensemble(networks)

    def members(self, logits: np.ndarray, seed: int) -> np.ndarray:
        """``(K, n, C)`` member logits for the post-hoc step (``(n, C)`` is one member)."""
        logits = np.asarray(logits, dtype=float)
        return logits if logits.ndim == 3 else logits[None]


class NoUncertainty(UncertaintyMethod, name="none"):
    """One network, one pass: calibration and conformal sets still apply (``calibrate``)."""


class MCDropoutMethod(UncertaintyMethod, name="mc_dropout"):
    """Gal & Ghahramani 2016: ``mc_samples`` stochastic passes with only the dropout layers active."""

    needs_network = True

    def forward(self, networks: Sequence[nn.Module], seed: int) -> Forward:
        import torch

        from fusemed.uncertainty.mc_dropout import MCDropout

        wrappers = [MCDropout(m, n_samples=self.config.mc_samples, seed=seed + j) for j, m in enumerate(networks)]
        return lambda inputs, present: torch.cat([w(inputs, present) for w in wrappers])


class EnsembleMethod(UncertaintyMethod, name="ensemble"):
    """Deep ensembles (Lakshminarayanan et al. 2017): ``ensemble_size`` networks per fold, other seeds."""

    needs_network = True

    def n_networks(self) -> int:
        return self.config.ensemble_size


class EvidentialMethod(UncertaintyMethod, name="evidential"):
    """Sensoy et al. 2018: the head outputs a Dirichlet (log α); members are draws from it."""

    needs_network = True
    draws: ClassVar[int] = 50

    def network_options(self) -> dict[str, Any]:
        import fusemed.uncertainty.evidential_head  # noqa: F401 - registers HEADS["evidential"]

        return {"head": "evidential"}

    def members(self, logits: np.ndarray, seed: int) -> np.ndarray:
        import torch

        from fusemed.uncertainty.evidential import dirichlet_members

        logits = np.asarray(logits, dtype=float)
        if logits.ndim == 3:  # several networks: the mean Dirichlet concentration
            logits = np.log(np.exp(logits).mean(axis=0))
        return dirichlet_members(torch.as_tensor(logits), self.draws, seed).numpy()
