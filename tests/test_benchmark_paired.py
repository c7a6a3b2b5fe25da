"""The table every benchmark opens with: each model against the best classical baseline, same folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sksurv.metrics import concordance_index_censored

from fusemed.benchmark.paired import holm, versus_best_baseline, weighted_scorer


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    assert holm([0.01, 0.04, 0.03, np.nan]) == pytest.approx([0.03, 0.06, 0.06, np.nan], nan_ok=True)


def test_unweighted_scores_equal_the_reference_implementations() -> None:
    rng = np.random.default_rng(0)
    n = 60
    y = rng.integers(0, 2, n)
    binary = pd.DataFrame({"y_true": y, "p": np.clip(0.3 * y + rng.random(n), 0, 1).round(2)})
    assert weighted_scorer("binary", binary)(np.ones(n)) == pytest.approx(roc_auc_score(y, binary["p"]))
    yc = rng.integers(0, 3, n)
    multi = pd.DataFrame({"y_true": yc, "y_pred": np.where(rng.random(n) < 0.6, yc, rng.integers(0, 3, n))})
    assert weighted_scorer("multiclass", multi)(np.ones(n)) == pytest.approx(
        balanced_accuracy_score(yc, multi["y_pred"]))
    time, event, fold = rng.exponential(10, n), rng.random(n) < 0.6, np.arange(n) % 3
    risk = -np.log(time) + rng.normal(0, 1, n) + 5.0 * fold  # fold offsets must not matter
    surv = pd.DataFrame({"time": time, "event": event.astype(int), "p": risk, "fold": fold})
    expected = np.mean([concordance_index_censored(event[fold == f], time[fold == f], risk[fold == f])[0]
                        for f in range(3)])  # the per-fold mean, as metrics.json's c_index
    assert weighted_scorer("survival", surv)(np.ones(n)) == pytest.approx(expected, abs=1e-9)


def test_a_better_model_gets_a_positive_paired_difference_and_a_twin_gets_none() -> None:
    rng = np.random.default_rng(1)
    n = 120
    runs = {}
    for seed in (0, 1, 2):
        y = rng.integers(0, 2, n)
        noise = rng.normal(0, 1, n)
        frame = lambda p, y=y: pd.DataFrame({"subject": [f"s{i}" for i in range(n)], "y_true": y, "p": p})  # noqa: E731
        runs[("logistic", seed)] = frame(y + 1.5 * noise)
        runs[("twin", seed)] = frame(y + 1.5 * noise)
        runs[("better", seed)] = frame(y + 0.3 * rng.normal(0, 1, n))
    table = versus_best_baseline(runs, "binary", ["logistic"], n_boot=300).set_index("model")
    assert table.loc["logistic", "baseline"] and table.loc["better", "best_baseline"] == "logistic"
    assert table.loc["better", "diff_low"] > 0 and table.loc["better", "p_holm"] < 0.05
    assert table.loc["twin", "diff"] == 0 and table.loc["twin", "diff_low"] <= 0 <= table.loc["twin", "diff_high"]
    assert table.loc["better", "seeds"] == 3 and table.loc["better", "min"] <= table.loc["better", "score"]
