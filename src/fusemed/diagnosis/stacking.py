"""Small fitted rules kept as plain numbers: a standardised logistic regression saved as JSON.

The fusion detector's stacking (per-voxel view probabilities -> one probability) and its cluster
confidence are logistic regressions fitted on held-out subjects; keeping only coefficients, means and
scales makes them JSON in the detector's config.json (no pickle) and lets a held-out set with one class
fall back to a named, recorded rule instead of failing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

EPS = 1e-4


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), p clipped to [EPS, 1 - EPS] (saturated maps stay finite)."""
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


class Logistic:
    """A standardised L2 logistic regression kept as plain numbers (JSON), or a fallback `rule`."""

    def __init__(self, features: list[str], coef: list[float] | None = None, intercept: float = 0.0,
                 mean: list[float] | None = None, scale: list[float] | None = None, rule: str = "",
                 **info: Any) -> None:
        self.features, self.coef, self.intercept, self.rule, self.info = features, coef, intercept, rule, info
        self.mean, self.scale = mean, scale

    @classmethod
    def fit(cls, features: list[str], x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None,
            fallback: str = "") -> Logistic:
        """Fit on (N, F) `x`; with one class only, keep `fallback` (a rule) instead."""
        info = {"n": int(len(y)), "n_positive": int(np.sum(y))}
        if len(np.unique(y)) < 2:
            return cls(features, rule=fallback, **info)
        mean, sd = x.mean(0), x.std(0)
        scale = np.where(sd > 1e-8, sd, 1.0)  # a constant column (one presence pattern) stays inert
        lr = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y, sample_weight=w)
        return cls(features, lr.coef_[0].tolist(), float(lr.intercept_[0]), mean.tolist(), scale.tolist(), **info)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, F) -> (N,) probabilities."""
        if self.coef is None:
            return rule(self.rule, x, self.features)
        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> dict:
        return {"features": self.features, "coef": self.coef, "intercept": self.intercept, "mean": self.mean,
                "scale": self.scale, "rule": self.rule, **self.info}


def rule(name: str, x: np.ndarray, features: list[str]) -> np.ndarray:
    """Fallbacks when a held-out set has one class: `max` of the views' raw probabilities, or a constant."""
    if name.startswith("constant:"):
        return np.full(len(x), float(name.split(":")[1]))
    logits = x[:, [i for i, f in enumerate(features) if f.startswith("logit_")]]
    return 1.0 / (1.0 + np.exp(-logits.max(1)))
