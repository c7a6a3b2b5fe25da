"""What a trained fold hands to the uncertainty methods: raw outputs of its held-out splits.

These records live in the uncertainty package (not in training) so that the dependency runs one way:
training imports uncertainty, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SplitOutputs:
    """Raw model outputs on one split of one fold.

    Attributes:
        subjects: ``(n,)`` subject ids.
        logits: ``(n, C)`` — or ``(K, n, C)`` with a member axis (MC-dropout passes, ensemble members);
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
    """One fold's held-out outputs; ``calibration_source`` says which split ``calibration`` came from:
    ``"calibration"`` (held out from training and early stopping) or ``"validation"`` (the early-stopping
    split, only on explicit request: optimistic, and recorded as such)."""

    fold: int
    task_kind: str
    calibration: SplitOutputs
    test: SplitOutputs
    calibration_source: str


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


def member_mean_probabilities(logits: np.ndarray, task_kind: str) -> np.ndarray:
    """``(n, C)`` probabilities (log-risks for survival), averaged over a member axis ``(K, n, C)`` if any."""
    probs = probabilities(logits, task_kind)
    return probs.mean(axis=0) if probs.ndim == 3 else probs
