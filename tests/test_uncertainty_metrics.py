"""Uncertainty metrics: values by hand and against torchmetrics / scikit-learn where definitions match."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import multiclass_calibration_error

from fusemed.evaluation import uncertainty_metrics as um


@pytest.mark.parametrize("n_classes", [2, 4])
def test_ece_matches_torchmetrics_top_label(n_classes: int) -> None:
    # continuous probabilities never sit on a bin edge, where torchmetrics' [lo, hi) and Guo's (lo, hi] differ
    rng = np.random.default_rng(n_classes)
    probs = rng.dirichlet(np.ones(n_classes) * 0.7, size=800)
    y = rng.integers(0, n_classes, size=800)
    expected = multiclass_calibration_error(
        torch.tensor(probs), torch.tensor(y), num_classes=n_classes, n_bins=15, norm="l1"
    )
    assert um.ece(y, probs) == pytest.approx(float(expected), abs=1e-6)
    if n_classes == 2:  # (n,) P(class 1) is read as the same binary task
        assert um.ece(y, probs[:, 1]) == pytest.approx(float(expected), abs=1e-6)


def test_ece_bins_are_right_closed() -> None:
    # a confidence exactly on the edge 9/15 shares the bin (8/15, 9/15] with 0.55 (Guo); torchmetrics'
    # [lo, hi) bins would split them: 0.5·|1 − 0.6| + 0.5·|0 − 0.55| = 0.475
    edge = np.linspace(0, 1, 16)[9]
    probs = np.array([[1 - edge, edge], [0.45, 0.55]])
    y = np.array([1, 0])  # first right, second wrong
    assert um.ece(y, probs) == pytest.approx(abs(0.5 - (edge + 0.55) / 2))
    assert um.ece(np.array([1, 1]), np.array([1.0, 1.0])) == 0.0


def test_adaptive_ece_equal_mass_bins() -> None:
    # 4 subjects, 2 bins of 2: confidences (0.6, 0.7) all right, (0.8, 0.9) one right
    y = np.array([1, 1, 1, 0])
    p = np.array([0.6, 0.7, 0.8, 0.9])
    assert um.adaptive_ece(y, p, n_bins=2) == pytest.approx(0.5 * abs(1 - 0.65) + 0.5 * abs(0.5 - 0.85))


def test_brier_and_nll_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=300)
    y = (rng.uniform(size=300) < p).astype(int)
    assert um.brier(y, p) == pytest.approx(brier_score_loss(y, p))
    assert um.nll(y, p) == pytest.approx(log_loss(y, p))
    probs = rng.dirichlet(np.ones(3), size=300)
    y3 = rng.integers(0, 3, size=300)
    assert um.nll(y3, probs) == pytest.approx(log_loss(y3, probs, labels=[0, 1, 2]))
    assert um.brier(y, np.stack([1 - p, p], 1)) == pytest.approx(2 * um.brier(y, p))  # multiclass variant


def test_aurc_ties_form_one_point_and_e_aurc() -> None:
    # confidences 0.9, 0.9 (one wrong), 0.8 (right), 0.7 (wrong); top-label probabilities via P(class 1)
    y = np.array([0, 1, 1, 0])
    p = np.array([0.9, 0.9, 0.8, 0.7])
    assert um.aurc(y, p) == pytest.approx((2 * 0.5 + 1 / 3 + 2 / 4) / 4)
    assert um.e_aurc(y, p) > 0
    ranked = np.array([0.9, 0.8, 0.7, 0.6])
    y_ranked = np.array([1, 1, 0, 0])  # wrong ones least confident
    assert um.e_aurc(y_ranked, ranked) == pytest.approx(0.0)


def test_sens_at_spec() -> None:
    y = np.array([0] * 20 + [1] * 10)
    p = np.r_[np.linspace(0.0, 0.5, 20), np.linspace(0.3, 0.9, 10)]
    above_all_negatives = np.mean(p[20:] > 0.5)
    assert um.sens_at_spec(y, p, spec=1.0) == pytest.approx(above_all_negatives)
    # spec ≥ 0.95 with 20 negatives allows one false positive (the negative at 0.5)
    assert um.sens_at_spec(y, p, spec=0.95) == pytest.approx(np.mean(p[20:] > p[18]))
    assert np.isnan(um.sens_at_spec(np.zeros(5), np.linspace(0, 1, 5)))


def test_coverage_set_size_and_per_group() -> None:
    sets = np.array([[True, False], [True, True], [False, False], [False, True]])
    y = np.array([0, 1, 0, 0])
    assert um.coverage(sets, y) == 0.5
    assert um.mean_set_size(sets) == 1.0
    assert um.per_group(um.coverage, ["a", "a", "b", "b"], sets, y) == {"a": 1.0, "b": 0.0}


def test_integrated_brier_perfect_and_uninformative() -> None:
    time = np.array([2.0, 4.0, 6.0, 8.0, 10.0])
    event = np.ones(5, bool)
    times = np.array([3.0, 5.0, 7.0, 9.0])
    perfect = (time[:, None] > times[None, :]).astype(float)  # S_i(t) = 1 until the event
    assert um.integrated_brier(perfect, event, time, times) == pytest.approx(0.0, abs=1e-9)
    coin = np.full((5, 4), 0.5)
    assert um.integrated_brier(coin, event, time, times) == pytest.approx(0.25)
