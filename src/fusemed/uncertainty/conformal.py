"""Split conformal classification: marginal, class-conditional and per missing-modality pattern.

Given calibration scores s_i = s(x_i, y_i), q̂ is the ⌈(n+1)(1−α)⌉-th smallest score (the finite-sample
correction; q̂ = +∞ when α < 1/(n+1)) and the set of a new subject is C(x) = {y : s(x, y) ≤ q̂}. Under
exchangeability 1−α ≤ P(Y ∈ C(X)) ≤ 1−α + 1/(n+1). Mondrian conformal (Vovk 2003) repeats this within each
group g, which gives P(Y ∈ C(X) | G = g) ≥ 1−α for every group:

* `groupby="none"`    — one marginal q̂.
* `groupby="class"`   — class-conditional: q̂_y from the calibration subjects of class y; y joins the set
  when s(x, y) ≤ q̂_y. Fixes minority-class under-coverage (an MS MRI study: 17 % → 77–86 %).
* `groupby="pattern"` — by missing-modality pattern (Zaffran et al., ICML 2023: marginal conformal
  under-covers some patterns).

Fallback for small groups. A group needs n_g ≥ ⌈(1−α)/α⌉ calibration subjects for a finite q̂ (9 at
α = 0.1; raise it with `min_group_size`). A pattern with fewer subjects (or never seen at calibration)
borrows the calibration subjects of all patterns with the same number of present modalities (pattern
strings are the present modalities joined by "+"); if those are still too few, or for a small class, the
marginal q̂ is used. Every fallback is recorded in `fallbacks_` ({group: what was used}) for reporting.
A fallback keeps marginal validity but no longer guarantees coverage within that group.

Why not MAPIE here: MAPIE 1.x's `SplitConformalClassifier` computes one quantile for all subjects (no
Mondrian groups, no class-conditional thresholds), raises instead of returning q̂ = +∞ when a group is
smaller than 1/α − 1, and wants an sklearn estimator rather than the probabilities our torch models already
produced. Our marginal LAC sets are tested to equal MAPIE's on the same data (tests/test_conformal.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from fusemed.choices import look_up

log = logging.getLogger(__name__)

_TOL = 1e-12  # scores within rounding of q̂ are included (MAPIE does the same with its EPSILON)


def as_class_probs(probs: np.ndarray) -> np.ndarray:
    """`(n,)` P(class 1) of a binary task → `(n, 2)`; `(n, C)` is returned as is."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:
        probs = np.stack([1.0 - probs, probs], axis=1)
    if probs.ndim != 2:
        raise ValueError(f"class probabilities must be (n,) or (n, C); got shape {probs.shape}")
    return probs


# --- scores: (n, C) probabilities (+ U (n,) uniforms) -> (n, C) nonconformity of every candidate label ---


def lac_scores(probs: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
    """LAC (Sadinle et al. 2019): s(x, y) = 1 − p̂_y."""
    return 1.0 - probs


def aps_scores(probs: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
    """APS (Romano et al. 2020): mass of the classes ranked above y, plus p̂_y (or U·p̂_y if `u` is given)."""
    above = (probs[:, None, :] * (probs[:, None, :] > probs[:, :, None])).sum(-1)
    own = probs if u is None else u[:, None] * probs
    return above + own


SCORES: dict[str, Callable[[np.ndarray, np.ndarray | None], np.ndarray]] = {
    "lac": lac_scores,
    "aps": aps_scores,
}
GROUPINGS = ("none", "class", "pattern")


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ⌈(n+1)(1−α)⌉-th smallest of `scores` `(n,)`; +∞ when that rank exceeds n (α < 1/(n+1))."""
    scores = np.sort(np.asarray(scores, dtype=float).ravel())
    n = scores.size
    rank = math.ceil((n + 1) * (1.0 - alpha) - 1e-9)  # -1e-9: (n+1)(1−α) = 18.000000000000004 is rank 18
    if rank > n:
        return math.inf
    return float(scores[max(rank, 1) - 1])


def min_calibration_size(alpha: float) -> int:
    """Smallest n with a finite q̂ at level α: n ≥ (1−α)/α (9 at α = 0.1, 19 at α = 0.05)."""
    return math.ceil((1.0 - alpha) / alpha - 1e-9)


def n_present(pattern: Hashable) -> int:
    """Number of present modalities of a pattern string such as `"t1+pet+clinical"`."""
    text = str(pattern)
    return 0 if text in ("", "none", "nan") else len(text.split("+"))


def format_sets(sets: np.ndarray) -> list[str]:
    """`(n, C)` bool → `["{0}", "{0,1}", "{}", ...]` (the `conformal_set` column)."""
    return ["{" + ",".join(str(c) for c in np.flatnonzero(row)) + "}" for row in np.asarray(sets, bool)]


def calibration_members(group: Hashable, cal_groups: np.ndarray, groupby: str,
                        n_min: int) -> tuple[np.ndarray, int, str]:
    """Which calibration subjects set the threshold of ``group``: ``(mask, size of the group, fallback note)``.

    The group itself when it has ``n_min`` subjects; else (patterns) every pattern with as many present
    modalities; else everyone (marginal). The note is empty when no fallback was needed.
    """
    own = cal_groups == group
    n_g = int(own.sum())
    if n_g >= n_min:
        return own, n_g, ""
    if groupby == "pattern":
        k = n_present(group)
        pooled = np.array([n_present(g) == k for g in cal_groups], dtype=bool)
        if pooled.sum() >= n_min:
            return pooled, n_g, (f"{n_g} calibration subjects < {n_min}: merged with the patterns of {k} present "
                                 f"modalities (n={int(pooled.sum())})")
    return (np.ones(len(cal_groups), dtype=bool), n_g,
            f"{n_g} calibration subjects < {n_min}: marginal quantile (n={len(cal_groups)})")


class ConformalClassifier:
    """Split conformal prediction sets from class probabilities.

    Args:
        alpha: miscoverage level, in (0, 1).
        score: "lac" or "aps".
        groupby: "none" | "class" | "pattern" (see the module docstring).
        randomized: APS only — add U·p̂_y instead of p̂_y (exact coverage, but a subject's set depends on
            a random draw); False gives deterministic, slightly conservative sets.
        min_group_size: groups smaller than this use the fallback (never below `min_calibration_size`).
        random_state: seeds the APS uniforms.
    """

    def __init__(
        self,
        alpha: float = 0.1,
        score: str = "lac",
        groupby: str = "none",
        randomized: bool = False,
        min_group_size: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.alpha = alpha
        self.score = score
        self.groupby = groupby
        self.randomized = randomized
        self.min_group_size = min_group_size
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------------------------

    def fit(self, probs: np.ndarray, y: np.ndarray, groups: Sequence[Hashable] | None = None) -> ConformalClassifier:
        """Calibrate: probs `(n,)` (binary P(class 1)) or `(n, C)`, y `(n,)` ints, groups `(n,)` patterns."""
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1); got {self.alpha}")
        self._score_fn = SCORES[look_up(self.score, SCORES)]
        look_up(self.groupby, GROUPINGS)
        probs = as_class_probs(probs)
        y = np.asarray(y).astype(int)
        if len(y) != len(probs):
            raise ValueError(f"calibration: {len(probs)} probability rows but {len(y)} labels")
        if self.groupby == "pattern":
            if groups is None:
                raise ValueError("groupby='pattern' needs `groups` (the missing-modality pattern of each subject)")
            if len(groups) != len(y):
                raise ValueError(f"calibration: {len(y)} labels but {len(groups)} groups")
        seeds = np.random.SeedSequence(self.random_state).spawn(2)
        scores = self._scores(probs, np.random.default_rng(seeds[0]))[np.arange(len(y)), y]
        return self._fit_scores(scores, y if self.groupby == "class" else groups, probs.shape[1])

    def _fit_scores(self, scores: np.ndarray, groups: Sequence[Hashable] | None, n_classes: int) -> ConformalClassifier:
        """Quantiles from the true-label scores `(n,)` of the calibration subjects (and their groups)."""
        self._score_fn = SCORES[look_up(self.score, SCORES)]
        self.n_classes_ = int(n_classes)
        self._predict_seed = np.random.SeedSequence(self.random_state).spawn(2)[1]
        self.scores_ = np.asarray(scores, dtype=float)
        self.n_min_ = max(min_calibration_size(self.alpha), self.min_group_size or 0)
        self.marginal_quantile_ = conformal_quantile(self.scores_, self.alpha)
        self.quantiles_: dict[Hashable, float] = {}
        self.group_sizes_: dict[Hashable, int] = {}
        self.fallbacks_: dict[str, str] = {}
        if self.groupby == "class":
            self._cal_groups = np.asarray(groups).astype(int)
            for c in range(self.n_classes_):
                self._resolve(c)
        elif self.groupby == "pattern":
            self._cal_groups = np.asarray([str(g) for g in groups], dtype=object)  # type: ignore[union-attr]
            for g in dict.fromkeys(self._cal_groups):
                self._resolve(g)
        if self.marginal_quantile_ == math.inf:
            log.warning(
                "conformal: %d calibration subjects are too few for alpha=%g (need %d): every set is full",
                len(self.scores_),
                self.alpha,
                self.n_min_,
            )
        return self

    def state(self) -> dict[str, Any]:
        """JSON-safe state: the calibration scores and groups (enough to rebuild every quantile and fallback)."""
        groups = None if self.groupby == "none" else [str(g) if self.groupby == "pattern" else int(g)
                                                      for g in self._cal_groups]
        return {"alpha": self.alpha, "score": self.score, "groupby": self.groupby, "randomized": self.randomized,
                "min_group_size": self.min_group_size, "random_state": self.random_state,
                "n_classes": self.n_classes_, "scores": [float(s) for s in self.scores_], "groups": groups}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ConformalClassifier:
        """The classifier :meth:`state` describes, fitted (no probabilities needed)."""
        keys = ("alpha", "score", "groupby", "randomized", "min_group_size", "random_state")
        return cls(**{k: state[k] for k in keys})._fit_scores(np.asarray(state["scores"], float), state["groups"],
                                                             state["n_classes"])

    def label_scores(self, probs: np.ndarray, labels: Sequence[int]) -> np.ndarray:
        """Non-randomised nonconformity ``(n,)`` of the given labels (what a calibration split holds)."""
        scores = SCORES[look_up(self.score, SCORES)](as_class_probs(probs), None)
        return scores[np.arange(len(scores)), np.asarray(labels, dtype=int)]

    def _scores(self, probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(size=len(probs)) if (self.randomized and self.score == "aps") else None
        return self._score_fn(probs, u)

    def _resolve(self, group: Hashable) -> float:
        """q̂ of a group, applying (and recording) the small-group fallback."""
        if group in self.quantiles_:
            return self.quantiles_[group]
        used, n_g, how = calibration_members(group, self._cal_groups, self.groupby, self.n_min_)
        self.group_sizes_[group] = n_g
        q = conformal_quantile(self.scores_[used], self.alpha)
        if how:
            self.fallbacks_[str(group)] = how
            log.info("conformal fallback for %s=%r: %s", self.groupby, group, how)
        self.quantiles_[group] = q
        return q

    # -- prediction --------------------------------------------------------------------------------

    def predict(self, probs: np.ndarray, groups: Sequence[Hashable] | None = None) -> np.ndarray:
        """Prediction sets `(n, C)` bool for probs `(n,)` / `(n, C)` (and their groups for 'pattern').

        A pattern never seen at calibration gets the fallback, recorded in `fallbacks_` too.
        """
        if not hasattr(self, "scores_"):
            raise NotFittedError("This ConformalClassifier is not fitted yet: call fit(probs, y[, groups]).")
        probs = as_class_probs(probs)
        if probs.shape[1] != self.n_classes_:
            raise ValueError(f"calibrated on {self.n_classes_} classes but got probabilities for {probs.shape[1]}")
        scores = self._scores(probs, np.random.default_rng(self._predict_seed))
        if self.groupby == "none":
            thresholds = np.full((len(probs), 1), self.marginal_quantile_)
        elif self.groupby == "class":
            thresholds = np.array([[self.quantiles_[c] for c in range(self.n_classes_)]])
        else:
            if groups is None or len(groups) != len(probs):
                raise ValueError("groupby='pattern' needs one group per subject at prediction time")
            thresholds = np.array([[self._resolve(str(g))] for g in groups])
        return scores <= thresholds + _TOL

    def quantile_table(self) -> dict[str, dict[str, float | int | str]]:
        """Per group: calibration size, q̂ and the fallback used (if any) — for metrics.json / reports."""
        return {
            str(g): {
                "n_calibration": self.group_sizes_.get(g, 0),
                "qhat": q,
                "fallback": self.fallbacks_.get(str(g), ""),
            }
            for g, q in self.quantiles_.items()
        }
