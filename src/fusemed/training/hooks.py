"""Where uncertainty plugs into training (issue 5): per-fold outputs in, extra columns/metrics out.

After each fold is trained, the runner predicts the fold's held-out splits and packs them into
:class:`FoldOutputs`. When ``config.uncertainty != "none"`` or ``config.calibrate``, the step registered
under ``config.uncertainty`` (``@register_uncertainty("name")``; modules under ``fusemed.uncertainty``
are imported first so theirs register) receives every fold's outputs and returns per-subject columns
for ``predictions.csv`` (``p_low, p_high, entropy, aleatoric, epistemic, conformal_set, abstain``, a
recalibrated ``p``...) and metrics merged into ``metrics.json``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class SplitOutputs:
    """Raw model outputs on one split of one fold.

    Attributes:
        subjects: ``(n,)`` subject ids.
        logits: ``(n, C)`` — or ``(K, n, C)`` with a member axis when ``mc_samples > 0`` (MC dropout);
            binary models may emit ``C = 1`` (a logit) or ``C = 2``; survival ``C = 1`` (log-risk).
        y: ``(n,)`` class labels, or ``(n, 2)`` ``[time, event]`` for survival; ``None`` if unlabelled.
        patterns: ``(n,)`` missing-modality pattern (present modalities joined by ``+``).
    """

    subjects: list[str]
    logits: np.ndarray
    y: np.ndarray | None
    patterns: list[str]


@dataclass
class FoldOutputs:
    """One fold's held-out outputs; ``calibration_source`` says which split ``calibration`` came from.

    ``calibration`` is the fold's calibration split when ``calibration_fraction > 0``, else its inner
    validation split (also used for early stopping: slightly optimistic, and said so here).
    """

    fold: int
    task_kind: str
    calibration: SplitOutputs
    test: SplitOutputs
    calibration_source: str


class UncertaintyStep(Protocol):
    def __call__(self, folds: list[FoldOutputs], config: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Return ``(columns indexed by subject, metrics)`` for the out-of-fold test predictions."""
        ...


UNCERTAINTY_STEPS: dict[str, UncertaintyStep] = {}


def register_uncertainty(name: str) -> Callable[[UncertaintyStep], UncertaintyStep]:
    def deco(step: UncertaintyStep) -> UncertaintyStep:
        UNCERTAINTY_STEPS[name] = step
        return step

    return deco


def run_uncertainty(folds: list[FoldOutputs], config: Any) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Run the configured step, if any; ``(None, {})`` when the run asks for none."""
    if config.uncertainty == "none" and not config.calibrate:
        return None, {}
    try:
        importlib.import_module("fusemed.uncertainty.steps")
    except ImportError:
        log.debug("fusemed.uncertainty not importable; only steps registered elsewhere are available")
    from monai.utils import look_up_option

    step = UNCERTAINTY_STEPS[look_up_option(config.uncertainty, list(UNCERTAINTY_STEPS) or ["(none registered)"])]
    return step(folds, config)


def member_mean_probabilities(logits: np.ndarray, task_kind: str) -> np.ndarray:
    """``(n, C)`` probabilities (log-risks for survival), averaged over a member axis ``(K, n, C)`` if any."""
    probs = probabilities(logits, task_kind)
    return probs.mean(axis=0) if probs.ndim == 3 else probs


def probabilities(logits: np.ndarray, task_kind: str) -> np.ndarray:
    """Logits ``(..., C)`` -> class probabilities ``(..., C)``; for survival the log-risk itself ``(..., 1)``."""
    logits = np.asarray(logits, dtype=np.float64)
    if task_kind == "survival":
        return logits
    if logits.shape[-1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-logits))
        return np.concatenate([1 - p1, p1], axis=-1)
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
