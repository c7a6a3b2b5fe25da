"""Conformal sets: coverage guarantees, finite-sample correction, Mondrian fixes, fallbacks, MAPIE parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from fusemed.evaluation.uncertainty_metrics import coverage, per_group
from fusemed.uncertainty import ConformalClassifier, conformal_quantile, min_calibration_size

ALPHA = 0.1


def _tolerance(n_cal: int, n_test: int, repeats: int, alpha: float = ALPHA, z: float = 3.5) -> float:
    """z standard deviations of the mean coverage over `repeats` draws: the conditional coverage given a
    calibration set is Beta(k, n+1−k) (REFERENCES.md), plus the binomial noise of n_test test points."""
    k = math.ceil((n_cal + 1) * (1 - alpha))
    beta_var = stats.beta(k, n_cal + 1 - k).var()
    binom_var = alpha * (1 - alpha) / n_test
    return z * math.sqrt((beta_var + binom_var) / repeats)


def _three_class(rng: np.random.Generator, n: int, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities from a softmax of Gaussian logits; the model reports them at `temperature`."""
    logits = rng.normal(scale=2.0, size=(n, 3))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > true.cumsum(1)).sum(1)
    model = np.exp(logits * temperature)
    return model / model.sum(1, keepdims=True), y


def test_quantile_is_the_corrected_order_statistic() -> None:
    scores = np.arange(1, 21) / 20.0  # 20 distinct scores
    assert conformal_quantile(scores, 0.1) == scores[18]  # ⌈21·0.9⌉ = 19th smallest
    assert conformal_quantile(scores[:9], 0.1) == scores[8]  # n = 9 is the smallest finite case at α = 0.1
    assert conformal_quantile(scores[:8], 0.1) == math.inf  # α < 1/(n+1)
    assert min_calibration_size(0.1) == 9 and min_calibration_size(0.05) == 19


def test_finite_sample_correction_n20() -> None:
    """n = 20, α = 0.1: the corrected q̂ covers ≥ 0.9; the plain 0.9-quantile (torch-uncertainty) ≈ 0.865."""
    rng = np.random.default_rng(0)
    repeats, n_test = 4000, 50
    cal = rng.uniform(size=(repeats, 20))
    test = rng.uniform(size=(repeats, n_test))
    ours = np.array([conformal_quantile(c, 0.1) for c in cal])
    plain = np.quantile(cal, 0.9, axis=1)
    cov_ours = (test <= ours[:, None]).mean()
    cov_plain = (test <= plain[:, None]).mean()
    tol = _tolerance(20, n_test, repeats)
    assert cov_ours >= 0.9 - tol
    assert cov_ours <= 0.9 + 1 / 21 + tol  # upper bound of split conformal without ties
    assert abs(cov_plain - 0.865) < 0.01
    assert cov_plain < 0.9 - tol


@pytest.mark.parametrize("score,randomized", [("lac", False), ("aps", True), ("aps", False)])
def test_marginal_coverage_on_held_out_data(score: str, randomized: bool) -> None:
    rng = np.random.default_rng(1)
    n_cal, n_test, repeats = 200, 1000, 20
    covs = []
    for r in range(repeats):
        p_cal, y_cal = _three_class(rng, n_cal, temperature=2.0)  # a miscalibrated model: still valid
        p_test, y_test = _three_class(rng, n_test, temperature=2.0)
        cp = ConformalClassifier(ALPHA, score=score, randomized=randomized, random_state=r).fit(p_cal, y_cal)
        covs.append(coverage(cp.predict(p_test), y_test))
    tol = _tolerance(n_cal, n_test, repeats)
    assert np.mean(covs) >= 1 - ALPHA - tol
    if score == "lac" or randomized:  # exact methods are not over-conservative either
        assert np.mean(covs) <= 1 - ALPHA + 1 / (n_cal + 1) + tol


def _missing_pattern_cohort(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80 % complete subjects with a calibrated model; 20 % with two modalities missing, where the model
    keeps its complete-data confidence although the signal is much weaker (over-confident)."""
    x = rng.normal(size=n)
    minority = rng.uniform(size=n) < 0.2
    groups = np.where(minority, "clinical", "t1+pet+clinical")
    p_true = 1 / (1 + np.exp(-np.where(minority, 0.4, 3.0) * x))
    y = (rng.uniform(size=n) < p_true).astype(int)
    p_model = 1 / (1 + np.exp(-3.0 * x))
    return p_model, y, groups


def test_pattern_mondrian_fixes_under_covered_pattern() -> None:
    rng = np.random.default_rng(2)
    n_cal, n_test, repeats = 1000, 2000, 10
    marginal, mondrian = {"clinical": [], "t1+pet+clinical": []}, {"clinical": [], "t1+pet+clinical": []}
    for _ in range(repeats):
        p_cal, y_cal, g_cal = _missing_pattern_cohort(rng, n_cal)
        p_te, y_te, g_te = _missing_pattern_cohort(rng, n_test)
        for groupby, out in (("none", marginal), ("pattern", mondrian)):
            sets = ConformalClassifier(ALPHA, groupby=groupby).fit(p_cal, y_cal, g_cal).predict(p_te, g_te)
            for g, c in per_group(coverage, g_te, sets, y_te).items():
                out[g].append(c)
    tol_minority = _tolerance(int(0.2 * n_cal), int(0.2 * n_test), repeats)
    assert np.mean(marginal["clinical"]) < 1 - ALPHA - 3 * tol_minority  # measurably under-covered
    for g, covs in mondrian.items():
        assert np.mean(covs) >= 1 - ALPHA - tol_minority, g


def test_class_conditional_fixes_minority_class() -> None:
    """Rare poor outcome (10 %) and a model that pushes every subject towards the majority class."""
    rng = np.random.default_rng(3)
    n_cal, n_test, repeats = 1000, 2000, 10

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.uniform(size=n) < 0.1).astype(int)
        score = rng.normal(loc=0.8 * y, size=n)
        return 1 / (1 + np.exp(-(score - 3.0))), y  # P(class 1) far too low

    marginal, per_class = [], {0: [], 1: []}
    for _ in range(repeats):
        p_cal, y_cal = draw(n_cal)
        p_te, y_te = draw(n_test)
        marg = ConformalClassifier(ALPHA).fit(p_cal, y_cal).predict(p_te)
        cond = ConformalClassifier(ALPHA, groupby="class").fit(p_cal, y_cal).predict(p_te)
        marginal.append(coverage(marg[y_te == 1], y_te[y_te == 1]))
        for c in (0, 1):
            per_class[c].append(coverage(cond[y_te == c], y_te[y_te == c]))
    tol = _tolerance(int(0.1 * n_cal), int(0.1 * n_test), repeats)
    assert np.mean(marginal) < 0.5  # plain conformal: minority class mostly missed
    for c, covs in per_class.items():
        assert np.mean(covs) >= 1 - ALPHA - tol, c


def test_small_groups_fall_back_and_are_recorded() -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(size=60)
    y = (rng.uniform(size=60) < p).astype(int)
    groups = np.array(["t1+pet"] * 40 + ["t1+clinical"] * 5 + ["pet+clinical"] * 6 + ["clinical"] * 9)
    cp = ConformalClassifier(ALPHA, groupby="pattern").fit(p, y, groups)
    # two-modality patterns with 5 and 6 subjects borrow from all two-modality patterns (n = 51)
    assert "merged with the patterns of 2 present modalities (n=51)" in cp.fallbacks_["t1+clinical"]
    assert "pet+clinical" in cp.fallbacks_
    assert "t1+pet" not in cp.fallbacks_ and "clinical" not in cp.fallbacks_  # n = 9 is enough at α = 0.1
    # a three-modality pattern never seen in calibration has nobody to merge with: marginal
    cp.predict(p[:2], ["t1+pet+clinical", "t1+pet"])
    assert "marginal" in cp.fallbacks_["t1+pet+clinical"]
    table = cp.quantile_table()
    assert table["t1+clinical"]["n_calibration"] == 5 and table["t1+pet"]["fallback"] == ""
    # class-conditional with a class too small for α = 0.1 falls back to the marginal q̂
    cc = ConformalClassifier(ALPHA, groupby="class").fit(p, np.r_[np.zeros(55, int), np.ones(5, int)])
    assert cc.quantiles_[1] == cc.marginal_quantile_ and "1" in cc.fallbacks_


def test_unfitted_and_bad_options_raise() -> None:
    with pytest.raises(NotFittedError):
        ConformalClassifier().predict(np.array([0.2, 0.8]))
    with pytest.raises(ValueError, match="did you mean"):
        ConformalClassifier(score="lacc").fit(np.array([0.2, 0.8]), np.array([0, 1]))
    with pytest.raises(ValueError, match="groups"):
        ConformalClassifier(groupby="pattern").fit(np.array([0.2, 0.8]), np.array([0, 1]))


class _Passthrough(ClassifierMixin, BaseEstimator):
    """A 'prefit' estimator whose features are already class probabilities (for MAPIE)."""

    def __init__(self, n_classes: int = 3) -> None:
        self.n_classes = n_classes

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> _Passthrough:
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X).argmax(axis=1)


@pytest.mark.parametrize("n_cal,alpha", [(137, 0.1), (50, 0.2), (400, 0.05)])
def test_marginal_lac_equals_mapie(n_cal: int, alpha: float) -> None:
    from mapie.classification import SplitConformalClassifier

    rng = np.random.default_rng(n_cal)
    p_cal, y_cal = _three_class(rng, n_cal)
    p_test, _ = _three_class(rng, 500)
    mapie = SplitConformalClassifier(
        _Passthrough().fit(None), confidence_level=1 - alpha, conformity_score="lac", prefit=True
    ).conformalize(p_cal, y_cal)
    expected = mapie.predict_set(p_test)[1][:, :, 0]
    ours = ConformalClassifier(alpha, score="lac").fit(p_cal, y_cal).predict(p_test)
    np.testing.assert_array_equal(ours, expected)
    # a single pattern for everyone: the Mondrian code path must give the marginal sets too
    same = ConformalClassifier(alpha, groupby="pattern").fit(p_cal, y_cal, ["t1"] * n_cal)
    np.testing.assert_array_equal(same.predict(p_test, ["t1"] * 500), expected)
