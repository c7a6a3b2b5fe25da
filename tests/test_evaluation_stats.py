"""Bootstrap CI and paired AUROC tests: the guarantees the report's comparison table relies on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from fusemed.evaluation.stats import (
    auroc,
    auroc_batch,
    bootstrap_auroc_ci,
    delong_test,
    paired_bootstrap_auroc,
)


def _binormal(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a score whose true AUROC is Φ(shift / √2)."""
    y = rng.integers(0, 2, n)
    return y, rng.normal(size=n) + shift * y


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    s = np.round(rng.normal(size=80) + y, 1)  # many ties
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(auroc_batch(np.ones(5), np.arange(5.0))[0])


def test_bootstrap_ci_covers_the_true_auroc() -> None:
    rng = np.random.default_rng(1)
    shift = 1.0
    truth = norm.cdf(shift / np.sqrt(2))
    trials = 60
    hits = 0
    for t in range(trials):
        y, s = _binormal(rng, 150, shift)
        ci = bootstrap_auroc_ci(y, s, n_boot=400, seed=t)
        assert ci.low <= ci.estimate <= ci.high
        hits += ci.low <= truth <= ci.high
    # nominal 95 %; 60 trials -> binomial sd ~ 2.8 %, percentile bootstrap runs slightly narrow
    assert hits / trials >= 0.85


def test_paired_tests_detect_a_real_difference() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    signal = rng.normal(size=300) + 1.5 * y
    strong = signal + 0.3 * rng.normal(size=300)
    weak = signal + 2.0 * rng.normal(size=300)
    for test in (delong_test(y, strong, weak), paired_bootstrap_auroc(y, strong, weak, n_boot=1000)):
        assert test.difference > 0.05
        assert test.p_value < 0.01
        assert test.low > 0


def test_paired_tests_do_not_flag_a_null_difference() -> None:
    rng = np.random.default_rng(3)
    flagged_delong = flagged_boot = 0
    trials = 40
    for t in range(trials):
        y = rng.integers(0, 2, 200)
        signal = rng.normal(size=200) + 1.0 * y
        a = signal + rng.normal(size=200)
        b = signal + rng.normal(size=200)  # same distribution as a: equal true AUROC
        flagged_delong += delong_test(y, a, b).p_value < 0.05
        flagged_boot += paired_bootstrap_auroc(y, a, b, n_boot=400, seed=t).p_value < 0.05
    # nominal 5 % false positives; allow binomial slack over 40 trials
    assert flagged_delong / trials <= 0.15
    assert flagged_boot / trials <= 0.15


def test_delong_and_bootstrap_agree_and_reject_mismatched_inputs() -> None:
    rng = np.random.default_rng(4)
    y, a = _binormal(rng, 250, 1.2)
    b = a + rng.normal(size=250)
    d, bs = delong_test(y, a, b), paired_bootstrap_auroc(y, a, b, n_boot=1000)
    assert d.difference == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert bs.difference == pytest.approx(d.difference)
    assert abs((d.high - d.low) - (bs.high - bs.low)) < 0.5 * (d.high - d.low)
    with pytest.raises(ValueError, match="same subjects"):
        delong_test(y, a, b[:-1])
