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

import numpy as np
from monai.utils import look_up_option
from sklearn.exceptions import NotFittedError

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
        self._score_fn = look_up_option(self.score, SCORES)
        look_up_option(self.groupby, GROUPINGS)
        probs = as_class_probs(probs)
        y = np.asarray(y).astype(int)
        if len(y) != len(probs):
            raise ValueError(f"calibration: {len(probs)} probability rows but {len(y)} labels")
        self.n_classes_ = probs.shape[1]
        seeds = np.random.SeedSequence(self.random_state).spawn(2)
        self._predict_seed = seeds[1]
        all_scores = self._scores(probs, np.random.default_rng(seeds[0]))
        self.scores_ = all_scores[np.arange(len(y)), y]
        self.n_min_ = max(min_calibration_size(self.alpha), self.min_group_size or 0)
        self.marginal_quantile_ = conformal_quantile(self.scores_, self.alpha)
        self.quantiles_: dict[Hashable, float] = {}
        self.group_sizes_: dict[Hashable, int] = {}
        self.fallbacks_: dict[str, str] = {}
        if self.groupby == "class":
            self._cal_groups = y
            for c in range(self.n_classes_):
                self._resolve(c)
        elif self.groupby == "pattern":
            if groups is None:
                raise ValueError("groupby='pattern' needs `groups` (the missing-modality pattern of each subject)")
            self._cal_groups = np.asarray([str(g) for g in groups], dtype=object)
            if len(self._cal_groups) != len(y):
                raise ValueError(f"calibration: {len(y)} labels but {len(self._cal_groups)} groups")
            for g in dict.fromkeys(self._cal_groups):
                self._resolve(g)
        if self.marginal_quantile_ == math.inf:
            log.warning(
                "conformal: %d calibration subjects are too few for alpha=%g (need %d): every set is full",
                len(y),
                self.alpha,
                self.n_min_,
            )
        return self

    def _scores(self, probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(size=len(probs)) if (self.randomized and self.score == "aps") else None
        return self._score_fn(probs, u)

    def _resolve(self, group: Hashable) -> float:
        """q̂ of a group, applying (and recording) the small-group fallback."""
        if group in self.quantiles_:
            return self.quantiles_[group]
        members = self._cal_groups == group
        n_g = int(members.sum())
        self.group_sizes_[group] = n_g
        if n_g >= self.n_min_:
            q = conformal_quantile(self.scores_[members], self.alpha)
        else:
            q, how = self._fallback(group)
            self.fallbacks_[str(group)] = f"{n_g} calibration subjects < {self.n_min_}: {how}"
            log.info("conformal fallback for %s=%r: %s", self.groupby, group, self.fallbacks_[str(group)])
        self.quantiles_[group] = q
        return q

    def _fallback(self, group: Hashable) -> tuple[float, str]:
        if self.groupby == "pattern":
            k = n_present(group)
            pooled = np.array([n_present(g) == k for g in self._cal_groups], dtype=bool)
            if pooled.sum() >= self.n_min_:
                return (
                    conformal_quantile(self.scores_[pooled], self.alpha),
                    f"merged with the patterns of {k} present modalities (n={int(pooled.sum())})",
                )
        return self.marginal_quantile_, f"marginal quantile (n={len(self.scores_)})"

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
