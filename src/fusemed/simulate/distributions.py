"""Conditional distributions of the simulator's latents, written once for drawing and for the oracle.

A latent such as the diffuse metabolism is drawn as ``clip(a + b·x + N(0, sd), lo, hi)`` of a parent
``x`` (the severity, the years above 20, ...). The same object draws it (scalar, for one subject, with
the scenario's random stream, so cohorts stay byte-identical) and scores it (vectorised likelihood of an
observed value under many hypothetical parents), which is what the observed-data oracle needs: the two
can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_expit, log_ndtr, ndtr


@dataclass(frozen=True)
class ClippedNormal:
    """``value = clip(intercept + slope·x + N(0, sd), lo, hi)``, optionally rounded to an integer first.

    Clipping leaves point masses at ``lo`` and ``hi`` (e.g. DMN disconnection 0 in mild patients), and
    rounding makes the value discrete (GCS motor 1..6); :meth:`likelihood` accounts for both.

    Examples:
        >>> d = ClippedNormal(0.0, 1.0, 1.0, -5.0, 5.0)
        >>> round(float(np.exp(d.log_likelihood(0.0, np.array([0.0]))[0])), 4)
        0.3989
    """

    intercept: float
    slope: float
    sd: float
    lo: float
    hi: float
    rounded: bool = False

    def mean(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.intercept + self.slope * x

    def draw(self, rng: np.random.Generator, x: float) -> float:
        """One value for parent ``x`` (one ``rng.normal`` call, as the simulator always did)."""
        value = self.mean(x) + rng.normal(0, self.sd)
        if self.rounded:
            value = np.round(value)
        return float(np.clip(value, self.lo, self.hi))

    def sample(self, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        """Values (K,) for parents ``x`` (K,)."""
        value = self.mean(x) + rng.normal(0, self.sd, size=np.shape(x))
        if self.rounded:
            value = np.round(value)
        return np.clip(value, self.lo, self.hi)

    def log_likelihood(self, value: float, x: np.ndarray) -> np.ndarray:
        """log p(value | x) for parents ``x`` (K,): a density inside (lo, hi), a probability at a bound or
        for a rounded value."""
        mu = self.mean(np.asarray(x, dtype=float))
        if self.rounded:
            upper = np.inf if value >= self.hi else (value + 0.5 - mu) / self.sd
            lower = -np.inf if value <= self.lo else (value - 0.5 - mu) / self.sd
            with np.errstate(divide="ignore"):
                return np.log(ndtr(upper) - ndtr(lower))
        if value <= self.lo:
            return log_ndtr((self.lo - mu) / self.sd)
        if value >= self.hi:
            return log_ndtr((mu - self.hi) / self.sd)
        z = (value - mu) / self.sd
        return -0.5 * z * z - np.log(self.sd * np.sqrt(2 * np.pi))


@dataclass(frozen=True)
class Logistic:
    """A binary latent: ``P(value = 1 | x, z) = sigmoid(intercept + slope·x + shift·z)``."""

    intercept: float
    slope: float
    shift: float = 0.0

    def probability(self, x: np.ndarray | float, z: np.ndarray | float = 0.0) -> np.ndarray | float:
        # 1 / (1 + exp(-t)) exactly as the simulator always computed it (same draws, same cohorts)
        return 1 / (1 + np.exp(-(self.intercept + self.slope * x + self.shift * z)))

    def draw(self, rng: np.random.Generator, x: float, z: float = 0.0) -> int:
        return int(rng.random() < float(self.probability(x, z)))

    def log_likelihood(self, value: int, x: np.ndarray, z: np.ndarray | float = 0.0) -> np.ndarray:
        t = self.intercept + self.slope * np.asarray(x, dtype=float) + self.shift * z
        return log_expit(t) if value else log_expit(-t)
