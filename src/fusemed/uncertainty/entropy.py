"""Split the predictive uncertainty of K stochastic members into aleatoric and epistemic parts.

Members are K probability vectors per subject: MC-dropout passes, ensemble members (seeds or CV folds),
or samples of a Dirichlet. With p̄ = mean over members (entropies in nats):

* total      = H[p̄]                      (everything the averaged prediction is unsure about)
* aleatoric  = mean_k H[p_k]             (what every member agrees is noise)
* epistemic  = total − aleatoric         (mutual information between label and member: disagreement)

Mutual information is ≥ 0 by Jensen; it is clipped at 0 to absorb rounding.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def as_member_probs(probs: np.ndarray) -> np.ndarray:
    """Bring member probabilities to `(K, n, C)`.

    `(K, n)` is read as the probability of class 1 of a binary task (so C = 2); `(n, C)` must be wrapped
    by the caller as `probs[None]` (a single member), since `(K, n)` and `(n, C)` cannot be told apart.
    """
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 2:
        probs = np.stack([1.0 - probs, probs], axis=-1)
    if probs.ndim != 3:
        raise ValueError(f"member probabilities must be (K, n) or (K, n, C); got shape {probs.shape}")
    return probs


def entropy(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along `axis` (0·log 0 = 0)."""
    probs = np.asarray(probs, dtype=float)
    return -np.sum(probs * np.log(np.clip(probs, _EPS, 1.0)), axis=axis)


def decompose(member_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total, aleatoric and epistemic uncertainty of each subject.

    Args:
        member_probs: `(K, n, C)` class probabilities of K members (or `(K, n)`: P(class 1), binary).

    Returns:
        `(total, aleatoric, epistemic)`, each `(n,)` in nats; total = aleatoric + epistemic.
    """
    probs = as_member_probs(member_probs)
    total = entropy(probs.mean(axis=0))
    aleatoric = entropy(probs).mean(axis=0)
    epistemic = np.clip(total - aleatoric, 0.0, None)
    return total, aleatoric, epistemic


def summarize_members(member_probs: np.ndarray, interval: float = 0.9) -> dict[str, np.ndarray]:
    """Per-subject summary of K members: the columns of `predictions.csv`.

    `p_low`/`p_high` are the empirical (1−interval)/2 and (1+interval)/2 quantiles of the members'
    probabilities (numpy's linear interpolation), i.e. a 90 % percentile interval by default. With few
    members (K < 10) this is close to the members' range; with K = 1 it collapses to `p`.

    Args:
        member_probs: `(K, n, C)` or `(K, n)` (binary, P(class 1)).
        interval: mass of the percentile interval, in (0, 1].

    Returns:
        dict of arrays: `p`, `p_low`, `p_high`, `entropy`, `aleatoric`, `epistemic`. For a binary task
        (C = 2) `p`, `p_low`, `p_high` are `(n,)` for class 1; for C > 2 they are `(n, C)`. The entropy
        terms are `(n,)`.
    """
    if not 0.0 < interval <= 1.0:
        raise ValueError(f"interval must lie in (0, 1]; got {interval}")
    probs = as_member_probs(member_probs)
    total, aleatoric, epistemic = decompose(probs)
    lo, hi = np.quantile(probs, [(1.0 - interval) / 2.0, (1.0 + interval) / 2.0], axis=0)
    mean = probs.mean(axis=0)
    if probs.shape[-1] == 2:
        mean, lo, hi = mean[:, 1], lo[:, 1], hi[:, 1]
    return {
        "p": mean,
        "p_low": lo,
        "p_high": hi,
        "entropy": total,
        "aleatoric": aleatoric,
        "epistemic": epistemic,
    }
