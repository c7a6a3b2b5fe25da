"""A new patient gets what cross-validation promised: `predict` applies the run's saved calibration and gives
conformal sets that cover on subjects no fold saw (overall and per missing pattern); on the training cohort it
gives each subject its out-of-fold row back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fusemed.cohort import Cohort
from fusemed.evaluation import uncertainty_metrics as um
from fusemed.training import TrainConfig, evaluate_run, predict_cohort, train_run
from fusemed.uncertainty.report import parse_sets

ALPHA = 0.1


def noisy_cohort(root: Path, n: int, seed: int) -> Path:
    """Two tabular exams; the outcome is a noisy logistic function of both, the second missing for 40 %
    (so its pattern carries less information: the sets must widen there, not lose coverage)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.2 * x[:, 0] + 1.5 * x[:, 2])))).astype(int)
    frame = pd.DataFrame({"subject": [f"p{seed}-{i:04d}" for i in range(n)], "x0": x[:, 0], "x1": x[:, 1],
                          "x2": x[:, 2], "outcome": y})
    frame.loc[rng.random(n) < 0.4, "x2"] = np.nan
    root.mkdir(parents=True)
    frame.to_csv(root / "manifest.csv", index=False)
    spec = {"name": root.name, "modalities": {"exam": {"kind": "tabular", "columns": ["x0", "x1"]},
                                              "lab": {"kind": "tabular", "columns": ["x2"]}},
            "targets": {"outcome": {"kind": "binary"}}}
    (root / "cohort.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("transfer")
    train = noisy_cohort(root / "train", 300, seed=0)
    new = noisy_cohort(root / "new", 1500, seed=1)
    config = TrainConfig(cohort=train, target="outcome", fusion="concat", uncertainty="mc_dropout", mc_samples=5,
                         calibrate=True, alpha=ALPHA, folds=5, epochs=15, patience=4, batch_size=32, lr=1e-2,
                         progress=False, seed=0, model={"tabular_encoder": "linear", "dropout": 0.2})
    return train, new, train_run(config, root / "run")


def test_new_patients_get_sets_that_cover_and_calibration_that_does_not_hurt(trained, tmp_path: Path) -> None:
    _, new, run = trained
    metrics = evaluate_run(run, new, tmp_path / "eval")
    frame = pd.read_csv(tmp_path / "eval" / "predictions.csv", dtype={"subject": str, "conformal_set": str})
    assert (frame["source"] == "folds").all()  # every fold model, none trained on these subjects
    assert {"p", "p_uncal", "p_low", "p_high", "epistemic", "conformal_set", "abstain", "pattern"} <= set(frame)
    y = frame["y_true"].to_numpy(int)
    sets = parse_sets(frame["conformal_set"], 2)
    assert abs(um.coverage(sets, y) - (1 - ALPHA)) <= 0.03
    assert metrics["coverage"] == pytest.approx(um.coverage(sets, y))
    for pattern, group in frame.groupby("pattern"):
        assert len(group) >= 100
        cov = um.coverage(parse_sets(group["conformal_set"], 2), group["y_true"].to_numpy(int))
        assert cov >= 1 - ALPHA - 0.05, pattern
    assert um.ece(y, frame["p"]) <= um.ece(y, frame["p_uncal"]) + 1e-12
    np.testing.assert_array_equal(frame["abstain"], frame["conformal_set"].map(lambda s: s not in ("{0}", "{1}")))


def test_predict_on_the_training_cohort_gives_each_subject_its_out_of_fold_row(trained) -> None:
    train, _, run = trained
    oof = pd.read_csv(run / "predictions.csv", dtype={"subject": str, "conformal_set": str}).set_index("subject")
    again = predict_cohort(run, Cohort.load(train)).set_index("subject").loc[oof.index]
    assert (again["source"] == [f"fold-{k}" for k in oof["fold"]]).all()
    for column in ("p", "p_uncal", "p_low", "p_high", "entropy", "aleatoric", "epistemic"):
        np.testing.assert_allclose(again[column], oof[column], atol=1e-6, err_msg=column)
    assert (again["conformal_set"] == oof["conformal_set"]).all() and (again["abstain"] == oof["abstain"]).all()
