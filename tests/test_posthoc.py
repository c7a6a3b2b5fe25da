"""`posthoc_fold` (the per-fold entry point) and `uncertainty_report` (the metrics.json part)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusemed.evaluation import uncertainty_metrics as um
from fusemed.uncertainty import posthoc_fold, uncertainty_report
from fusemed.uncertainty.posthoc import COLUMNS
from fusemed.uncertainty.report import parse_sets

PATTERNS = np.array(["t1+pet+clinical", "pet+clinical", "clinical"])


def _fold(rng: np.random.Generator, n: int, k: int = 8, overconfidence: float = 3.0):
    """Binary logits of K members (a shared true logit + member noise), over-confident by a factor."""
    groups = PATTERNS[rng.choice(3, size=n, p=[0.6, 0.25, 0.15])]
    signal = np.select([groups == PATTERNS[0], groups == PATTERNS[1]], [2.0, 1.0], 0.5)
    z = signal * rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    members = overconfidence * (z[None] + rng.normal(scale=0.5, size=(k, n)))
    return members, y, groups


@pytest.mark.parametrize("calibrate", [False, True])
def test_posthoc_fold_columns_and_guarantees(calibrate: bool) -> None:
    rng = np.random.default_rng(0)
    alpha = 0.1
    covs, frames = [], []
    for _ in range(5):
        cal_z, cal_y, cal_g = _fold(rng, 600)
        test_z, test_y, test_g = _fold(rng, 1000)
        frame = posthoc_fold(
            cal_z, cal_y, cal_g, test_z, test_g, calibrate=calibrate, alpha=alpha, groupby="pattern"
        )
        sets = parse_sets(frame["conformal_set"], 2)
        covs.append(um.per_group(um.coverage, test_g, sets, test_y))
        frames.append((frame, test_y))
    frame, test_y = frames[-1]
    assert tuple(c for c in frame.columns if c != "p_uncal") == COLUMNS and len(frame) == 1000
    assert ("p_uncal" in frame.columns) == calibrate
    assert set(frame["conformal_set"]) <= {"{0}", "{1}", "{0,1}", "{}"}
    np.testing.assert_array_equal(
        frame["abstain"], frame["conformal_set"].map(lambda s: s not in ("{0}", "{1}"))
    )
    assert (frame["p_low"] <= frame["p_high"]).all() and (frame["epistemic"] > 0).all()
    np.testing.assert_allclose(frame["entropy"], frame["aleatoric"] + frame["epistemic"])
    for pattern in PATTERNS:  # per-pattern validity (15 % minority: ~90 calibration subjects)
        assert np.mean([c[pattern] for c in covs]) >= 1 - alpha - 0.04, pattern
    if calibrate:
        assert frame.attrs["temperature"] > 1.5  # the members were 3× over-confident
        uncal = posthoc_fold(
            cal_z, cal_y, cal_g, test_z, test_g, calibrate=False, alpha=alpha, groupby="none"
        )
        assert um.ece(test_y, frame["p"]) < um.ece(test_y, uncal["p"])
        np.testing.assert_allclose(frame["p_uncal"], uncal["p"])  # the pre-calibration probability, kept
        assert um.nll(test_y, frame["p"]) < um.nll(test_y, uncal["p"])


def test_posthoc_fold_single_member_and_multiclass() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 3))
    y = z.argmax(1)
    groups = ["t1"] * 200
    frame = posthoc_fold(
        z[:100],
        y[:100],
        groups[:100],
        z[100:],
        groups[100:],
        calibrate=True,
        alpha=0.2,
        score="aps",
        groupby="class",
    )
    assert {"p_0", "p_1", "p_2"} <= set(frame.columns)
    np.testing.assert_allclose(frame[["p_0", "p_1", "p_2"]].sum(1), 1.0)
    np.testing.assert_allclose(frame["epistemic"], 0.0, atol=1e-12)  # one member: no disagreement
    np.testing.assert_allclose(frame["p"], frame[["p_0", "p_1", "p_2"]].max(1))


def test_uncertainty_report_overall_and_per_pattern() -> None:
    rng = np.random.default_rng(2)
    cal_z, cal_y, cal_g = _fold(rng, 400)
    test_z, test_y, test_g = _fold(rng, 500)
    frame = posthoc_fold(cal_z, cal_y, cal_g, test_z, test_g, calibrate=True, alpha=0.1, groupby="pattern")
    frame["y_true"], frame["pattern"] = test_y, test_g
    report = uncertainty_report(frame, alpha=0.1)
    for key in (
        "ece",
        "adaptive_ece",
        "brier",
        "nll",
        "aurc",
        "sens_at_spec95",
        "sens_at_spec100",
        "coverage",
        "mean_set_size",
        "n",
    ):
        assert key in report, key
    assert report["n"] == 500 and report["target_coverage"] == pytest.approx(0.9)
    assert report["ece"] == pytest.approx(um.ece(test_y, frame["p"].to_numpy()))
    assert set(report["per_pattern"]) == set(PATTERNS)
    clin = frame[frame["pattern"] == "clinical"]
    assert report["per_pattern"]["clinical"]["n"] == len(clin)
    assert report["per_pattern"]["clinical"]["brier"] == pytest.approx(um.brier(clin["y_true"], clin["p"]))
    one_class = pd.DataFrame({"y_true": [0, 0], "p": [0.2, 0.4], "conformal_set": ["{0}", "{0,1}"]})
    out = uncertainty_report(one_class)
    assert out["sens_at_spec95"] is None and out["coverage"] == 1.0 and out["mean_set_size"] == 1.5
