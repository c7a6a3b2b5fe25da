"""Survival curves from Cox log-risks and the out-of-fold integrated Brier score."""

from __future__ import annotations

import numpy as np

from fusemed.evaluation.survival import cox_survival_curves, out_of_fold_integrated_brier


def _cox_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(size=n)
    event_time = rng.exponential(1.0 / np.exp(x))  # hazard exp(x): a true Cox model, log-risk = x
    censor = rng.exponential(2.0, size=n)
    return x, np.minimum(event_time, censor), (event_time <= censor).astype(int)


def test_curves_are_survival_functions_ordered_by_risk() -> None:
    rng = np.random.default_rng(0)
    ref = _cox_data(rng, 300)
    times = np.linspace(0.05, 1.5, 12)
    curves = cox_survival_curves(ref, np.array([-1.0, 0.0, 1.0]), times)
    assert curves.shape == (3, 12) and ((curves >= 0) & (curves <= 1)).all()
    assert (np.diff(curves, axis=1) <= 1e-12).all()  # non-increasing in time
    assert (curves[0] >= curves[1]).all() and (curves[1] >= curves[2]).all()  # higher risk, lower survival
    # Breslow recovers the true baseline S0(t) = exp(-t) of this simulation
    np.testing.assert_allclose(curves[1], np.exp(-times), atol=0.08)


def test_true_risk_scores_better_than_noise() -> None:
    rng = np.random.default_rng(1)
    folds = [(_cox_data(rng, 200), _cox_data(rng, 200)) for _ in range(3)]
    refs = [r for r, _ in folds]
    true = out_of_fold_integrated_brier(refs, [t for _, t in folds])
    noise = out_of_fold_integrated_brier(
        [(rng.normal(size=200), t, e) for _, t, e in refs],
        [(rng.normal(size=200), t, e) for _, (_, t, e) in folds],
    )
    assert 0 < true["integrated_brier"] < noise["integrated_brier"] <= 0.3
    assert true["ibs_t_min"] < true["ibs_t_max"]


def test_no_event_in_reference_gives_none() -> None:
    rng = np.random.default_rng(2)
    hz, t, _ = _cox_data(rng, 20)
    out = out_of_fold_integrated_brier([(hz, t, np.zeros(20))], [_cox_data(rng, 20)])
    assert out["integrated_brier"] is None
