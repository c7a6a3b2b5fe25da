"""Contract of every registered uncertainty step (fast: synthetic fold outputs, no training)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import fusemed.uncertainty.steps  # noqa: F401 - registers the steps
from fusemed.training.hooks import UNCERTAINTY_STEPS, FoldOutputs, SplitOutputs

METHODS = ("none", "mc_dropout", "ensemble", "evidential")
PATTERNS = np.array(["t1+pet", "t1", "pet"])


def _split(rng: np.random.Generator, n: int, method: str, offset: int) -> SplitOutputs:
    z = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * z))).astype(int)
    if method == "evidential":  # log α of a 2-class Dirichlet, more evidence where |z| is large
        evidence = np.stack([np.exp(-2 * z), np.exp(2 * z)], axis=1)
        logits = np.log(1 + 5 * evidence)
    elif method == "none":
        logits = 3 * z[:, None]  # (n, 1), over-confident
    else:
        logits = 3 * (z[None, :, None] + rng.normal(scale=0.3, size=(5, n, 1)))  # (K, n, 1)
    subjects = [f"s{offset + i}" for i in range(n)]
    return SplitOutputs(subjects, logits, y, list(PATTERNS[rng.integers(0, 3, size=n)]))


@pytest.mark.parametrize("method", METHODS)
def test_every_step_returns_valid_columns_and_metrics(method: str) -> None:
    assert set(METHODS) <= set(UNCERTAINTY_STEPS)
    rng = np.random.default_rng(0)
    folds = [
        FoldOutputs(
            k, "binary", _split(rng, 120, method, 1000 * k), _split(rng, 80, method, 1000 * k + 500), "calibration"
        )
        for k in range(2)
    ]
    config = SimpleNamespace(seed=0, calibrate=True, alpha=0.1, conformal_score="lac", conformal_groupby="pattern")
    columns, metrics = UNCERTAINTY_STEPS[method](folds, config)
    expected = [s for f in folds for s in f.test.subjects]
    assert list(columns.index) == expected
    assert {"p", "p_low", "p_high", "entropy", "aleatoric", "epistemic", "conformal_set", "abstain"} <= set(columns)
    assert columns["conformal_set"].isin(["{0}", "{1}", "{0,1}", "{}"]).all()
    assert ((columns["epistemic"] > 0) == (method != "none")).all()
    assert 0.8 <= metrics["coverage"] <= 1.0 and set(metrics["per_pattern"]) == set(PATTERNS)
    assert metrics["uncertainty"]["method"] == method
    assert all(f["temperature"] > 0 for f in metrics["uncertainty"]["folds"].values())


def test_member_methods_refuse_single_pass_logits() -> None:
    rng = np.random.default_rng(1)
    folds = [FoldOutputs(0, "binary", _split(rng, 50, "none", 0), _split(rng, 50, "none", 100), "validation")]
    config = SimpleNamespace(seed=0, calibrate=False, alpha=0.1, conformal_score="lac", conformal_groupby="none")
    with pytest.raises(ValueError, match="member axis"):
        UNCERTAINTY_STEPS["mc_dropout"](folds, config)
