"""`Posthoc` (what a run fits after training and `predict` applies again) and `uncertainty_report`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fusemed.evaluation import uncertainty_metrics as um
from fusemed.uncertainty import FoldOutputs, Posthoc, SplitOutputs, UncertaintyConfig, uncertainty_report
from fusemed.uncertainty.report import parse_sets

PATTERNS = np.array(["t1+pet+clinical", "pet+clinical", "clinical"])
COLUMNS = {"p", "p_uncal", "p_low", "p_high", "entropy", "aleatoric", "epistemic", "conformal_set", "abstain"}


def _draw(rng: np.random.Generator, n: int):
    """True logits whose strength depends on the missing pattern, labels drawn from them."""
    groups = PATTERNS[rng.choice(3, size=n, p=[0.6, 0.25, 0.15])]
    z = np.select([groups == PATTERNS[0], groups == PATTERNS[1]], [2.0, 1.0], 0.5) * rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    return z, y, list(groups)


def _members(rng: np.random.Generator, z: np.ndarray, k: int, scale: float) -> np.ndarray:
    """K members `(K, n, 1)`: the true logit + member noise, multiplied by `scale` (> 1: over-confident)."""
    return (scale * (z[None] + rng.normal(scale=0.5, size=(k, len(z)))))[..., None]


def _folds(rng: np.random.Generator, n_folds: int = 5, n_cal: int = 200, n_test: int = 300, k: int = 8,
           scales: list[float] | None = None) -> list[FoldOutputs]:
    folds = []
    for f in range(n_folds):
        scale = (scales or [3.0] * n_folds)[f]
        splits = []
        for n in (n_cal, n_test):
            z, y, g = _draw(rng, n)
            splits.append(SplitOutputs([f"s{f}-{n}-{i}" for i in range(n)], _members(rng, z, k, scale), y, g))
        folds.append(FoldOutputs(f, "binary", splits[0], splits[1], "calibration"))
    return folds


def _config(**kw) -> UncertaintyConfig:
    return UncertaintyConfig(method="ensemble", alpha=0.1, conformal_groupby="pattern", **kw)


@pytest.mark.parametrize("calibrate", [False, True])
def test_out_of_fold_columns_and_guarantees(calibrate: bool) -> None:
    rng = np.random.default_rng(0)
    config = _config(calibrate=calibrate)
    folds = _folds(rng)
    post = Posthoc.fit(folds, config, config.build())
    frames = [post.out_of_fold(f.fold, f.test.logits, f.test.patterns, config.build()) for f in folds]
    frame = pd.concat(frames, ignore_index=True)
    y = np.concatenate([f.test.y for f in folds])
    groups = np.concatenate([f.test.patterns for f in folds])
    assert COLUMNS <= set(frame.columns) and len(frame) == 1500
    assert set(frame["conformal_set"]) <= {"{0}", "{1}", "{0,1}", "{}"}
    np.testing.assert_array_equal(frame["abstain"], frame["conformal_set"].map(lambda s: s not in ("{0}", "{1}")))
    assert (frame["p_low"] <= frame["p_high"]).all() and (frame["epistemic"] > 0).all()
    np.testing.assert_allclose(frame["entropy"], frame["aleatoric"] + frame["epistemic"])
    coverage = um.per_group(um.coverage, groups, parse_sets(frame["conformal_set"], 2), y)
    for pattern in PATTERNS:
        assert coverage[pattern] >= 1 - 0.1 - 0.05, pattern
    if calibrate:  # the members were 3x over-confident: a temperature > 1 helps and is kept
        assert post.temperature > 1.5 and post.temperature_record["applied"]
        assert um.ece(y, frame["p"]) < um.ece(y, frame["p_uncal"])
        assert um.nll(y, frame["p"]) < um.nll(y, frame["p_uncal"])
    else:
        assert post.temperature == 1.0
        np.testing.assert_allclose(frame["p"], frame["p_uncal"])


def test_a_temperature_that_does_not_help_held_out_folds_is_not_applied() -> None:
    """Fold 0's calibration split is over-confident, fold 1's under-confident: the temperature fitted on
    one fold makes the other worse, so the cross-fitted check leaves T = 1 and says why."""
    config = _config(calibrate=True)
    post = Posthoc.fit(_folds(np.random.default_rng(1), n_folds=2, scales=[3.0, 1 / 3]), config, config.build())
    assert post.temperature == 1.0 and not post.temperature_record["applied"]
    assert "not clear" in post.temperature_record["why"]
    held = post.temperature_record["cross_fitted"]
    assert held["nll_gain_z"] < 2 or held["ece_calibrated"] > held["ece_uncalibrated"]


def test_a_temperature_fitted_on_a_handful_of_subjects_is_not_trusted() -> None:
    """Mildly over-confident members, 8 calibration subjects a fold: the fitted T is noise, so it is left at 1."""
    config = _config(calibrate=True)
    post = Posthoc.fit(_folds(np.random.default_rng(5), n_folds=3, n_cal=8, scales=[1.2] * 3), config,
                       config.build())
    assert post.temperature == 1.0 and post.temperature_record["n_calibration"] == 24


def test_new_subjects_get_sets_that_cover() -> None:
    """Every fold model scores a new subject; the set of its assigned fold covers at ~1 - alpha overall and
    on each missing pattern, and survives a JSON round trip unchanged."""
    rng = np.random.default_rng(2)
    config = _config(calibrate=True)
    post = Posthoc.fit(_folds(rng), config, config.build())
    z, y, groups = _draw(rng, 4000)
    fold_logits = {k: _members(rng, z, 8, 3.0) for k in range(5)}
    frame = post.new_subjects(fold_logits, groups, config.build())
    sets = parse_sets(frame["conformal_set"], 2)
    assert abs(um.coverage(sets, y) - 0.9) <= 0.03
    for pattern, cov in um.per_group(um.coverage, np.asarray(groups), sets, y).items():
        assert cov >= 0.85, pattern
    assert um.ece(y, frame["p"]) <= um.ece(y, frame["p_uncal"])
    again = Posthoc.from_json(json.loads(json.dumps(post.to_json())))
    pd.testing.assert_frame_equal(again.new_subjects(fold_logits, groups, config.build()), frame)


def test_a_new_subject_keeps_its_fold_whatever_cohort_it_comes_in() -> None:
    """The calibrating fold is a function of (run seed, subject id): every fold gets a share of new subjects,
    and a patient's set does not change when it is predicted alone or among others."""
    rng = np.random.default_rng(4)
    config = _config(calibrate=True)
    post = Posthoc.fit(_folds(rng), config, config.build())
    keys = [f"sub-{i:03d}" for i in range(500)]
    assigned = post.fold_of(keys)
    assert set(np.unique(assigned)) == set(range(5)) and np.bincount(assigned).min() > 70
    z, _, groups = _draw(rng, 500)
    fold_logits = {k: _members(rng, z, 8, 3.0) for k in range(5)}
    every = post.new_subjects(fold_logits, groups, config.build(), keys)
    alone = post.new_subjects({k: v[:, 7:8] for k, v in fold_logits.items()}, groups[7:8], config.build(), keys[7:8])
    assert alone["conformal_set"].iloc[0] == every["conformal_set"].iloc[7]


def test_multiclass_single_member_with_class_conditional_aps() -> None:
    rng = np.random.default_rng(3)
    folds = []
    for f in range(2):
        z = rng.normal(size=(200, 3))
        y = z.argmax(1)
        g = ["t1"] * 100
        folds.append(FoldOutputs(f, "multiclass", SplitOutputs([str(i) for i in range(100)], z[:100], y[:100], g),
                                 SplitOutputs([str(i) for i in range(100)], z[100:], y[100:], g), "calibration"))
    config = UncertaintyConfig(calibrate=True, alpha=0.2, conformal_score="aps", conformal_groupby="class")
    post = Posthoc.fit(folds, config, config.build())
    frame = post.out_of_fold(0, folds[0].test.logits, folds[0].test.patterns, config.build())
    assert {"p_0", "p_1", "p_2", "y_pred"} <= set(frame.columns)
    np.testing.assert_allclose(frame[["p_0", "p_1", "p_2"]].sum(1), 1.0)
    np.testing.assert_allclose(frame["epistemic"], 0.0, atol=1e-12)  # one member: no disagreement
    np.testing.assert_allclose(frame["p"], frame[["p_0", "p_1", "p_2"]].max(1))


def test_uncertainty_report_overall_and_per_pattern() -> None:
    rng = np.random.default_rng(4)
    config = _config(calibrate=True)
    folds = _folds(rng, n_folds=2, n_test=500)
    post = Posthoc.fit(folds, config, config.build())
    frame = post.out_of_fold(1, folds[1].test.logits, folds[1].test.patterns, config.build())
    test_y, test_g = folds[1].test.y, folds[1].test.patterns
    frame["y_true"], frame["pattern"] = test_y, test_g
    report = uncertainty_report(frame, alpha=0.1)
    for key in ("ece", "adaptive_ece", "brier", "nll", "aurc", "sens_at_spec95", "sens_at_spec100", "coverage",
                "mean_set_size", "n"):
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


def test_member_probabilities_keep_every_axis_for_one_member_and_one_subject() -> None:
    from fusemed.uncertainty.posthoc import member_probs

    for shape in ((1, 1, 1), (1, 3, 1), (4, 1, 1)):
        probs = member_probs(np.zeros(shape))
        assert probs.shape == (*shape[:2], 2) and np.allclose(probs, 0.5)
