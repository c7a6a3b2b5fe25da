"""Survival curves from Cox log-risks, the out-of-fold integrated Brier score, and the C-index across folds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sksurv.metrics import concordance_index_censored

from fusemed.evaluation.metrics import centre_per_fold, discrimination_report, fold_c_index, survival_metrics
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


def _offset_folds(seed: int = 2, n_folds: int = 4, n: int = 60) -> pd.DataFrame:
    """Out-of-fold predictions of a good Cox model whose folds' log-risks carry very different offsets."""
    rng = np.random.default_rng(seed)
    frames = []
    for fold, offset in zip(range(n_folds), (0.0, 4.0, -4.0, 8.0), strict=False):
        x, time, event = _cox_data(rng, n)
        frames.append(pd.DataFrame({"subject": [f"f{fold}-{i}" for i in range(n)], "fold": fold,
                                    "pattern": np.where(np.arange(n) % 2, "a+b", "a"),
                                    "p": x + 0.3 * rng.normal(size=n) + offset, "time": time, "event": event}))
    return pd.concat(frames, ignore_index=True)


def test_fold_offsets_do_not_lower_the_c_index() -> None:
    frame = _offset_folds()
    time, event, risk, folds = (frame[c].to_numpy() for c in ("time", "event", "p", "fold"))
    naive = survival_metrics(time, event, risk)["c_index"]
    result = fold_c_index(time, event, risk, folds)
    per_fold = [concordance_index_censored(event[folds == f].astype(bool), time[folds == f], risk[folds == f])[0]
                for f in range(4)]
    assert result["c_index_method"] == "per-fold mean"
    assert result["c_index"] == pytest.approx(np.mean(per_fold), abs=1e-6)
    assert list(result["c_index_per_fold"]) == ["0", "1", "2", "3"]
    assert result["c_index_min"] <= result["c_index"] <= result["c_index_max"] and result["c_index_sd"] > 0
    assert naive < result["c_index"] - 0.1  # raw pooling scores the offsets, not the model
    assert abs(result["c_index_pooled"] - result["c_index"]) < 0.03  # centring recovers it
    # centring never changes a single fold's C (rank-based)
    one = folds == 1
    assert survival_metrics(time[one], event[one], centre_per_fold(risk, folds)[one])["c_index"] == \
        pytest.approx(per_fold[1], abs=1e-6)


def test_discrimination_report_names_its_c_index_method() -> None:
    frame = _offset_folds()
    report = discrimination_report(frame, "survival", ["a", "b"], min_n=10)
    assert report["c_index_method"] == "per-fold mean" and report["n"] == 240
    centred = frame.assign(p=centre_per_fold(frame["p"].to_numpy(), frame["fold"].to_numpy()))
    for pattern, group in centred.groupby("pattern"):
        entry = report["per_pattern"][pattern]
        assert entry["c_index_method"] == "pooled after per-fold centring"
        expected = concordance_index_censored(group["event"].astype(bool), group["time"], group["p"])[0]
        assert entry["c_index"] == pytest.approx(expected, abs=1e-6) and entry["c_index"] > 0.7
    assert report["robustness"]["full_value"] == report["per_pattern"]["a+b"]["c_index"]
    new_cohort = discrimination_report(frame.drop(columns="fold"), "survival", ["a", "b"])  # e.g. predict
    assert new_cohort["c_index_method"].startswith("plain") and "c_index_sd" not in new_cohort
    assert new_cohort["per_pattern"]["a"]["c_index_method"].startswith("plain")
    json.dumps(report)  # metrics.json
