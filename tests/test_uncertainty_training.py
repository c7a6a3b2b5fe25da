"""`fusemed train --uncertainty ... --calibrate --alpha`: the run folder carries the uncertainty columns/metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from training_helpers import SMALL_MODEL, make_training_cohort
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.run import Run
from fusemed.training import TrainConfig, train_run

UNCERTAINTY_COLUMNS = ["p_low", "p_high", "entropy", "aleatoric", "epistemic", "conformal_set", "abstain"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_training_cohort(tmp_path_factory.mktemp("unc") / "cohort", n=24)


def _config(cohort: Path, **kw) -> TrainConfig:
    base = dict(
        cohort=cohort,
        target="outcome",
        fusion="concat",
        folds=2,
        epochs=2,
        batch_size=6,
        spacing=4.0,
        progress=False,
        seed=1,
        calibrate=True,
        alpha=0.2,
        calibration_fraction=0.3,
    )
    base.update(kw)
    return TrainConfig(**base)


def _check_run(run: Path, members: bool) -> tuple[pd.DataFrame, dict]:
    frame = pd.read_csv(run / "predictions.csv", dtype={"subject": str})
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(UNCERTAINTY_COLUMNS) <= set(frame.columns)
    assert frame["conformal_set"].isin(["{0}", "{1}", "{0,1}", "{}"]).all()
    assert (frame["abstain"] == ~frame["conformal_set"].isin(["{0}", "{1}"])).all()
    assert ((frame["p_low"] <= frame["p"] + 1e-9) | ~members).all()
    if members:
        assert (frame["epistemic"] > 0).all()
    for key in (
        "ece",
        "adaptive_ece",
        "nll",
        "aurc",
        "sens_at_spec95",
        "sens_at_spec100",
        "coverage",
        "mean_set_size",
        "auroc",
    ):
        assert key in metrics, key
    assert metrics["coverage"] == pytest.approx(
        np.mean([str(y) in s for y, s in zip(frame["y_true"], frame["conformal_set"], strict=True)])
    )
    for pattern, entry in metrics["per_pattern"].items():  # the training and uncertainty metrics merged
        assert "auroc" in entry and "coverage" in entry, pattern
    folds = metrics["uncertainty"]["folds"]
    assert set(folds) == {"0", "1"} and all(f["calibration_source"] == "calibration" for f in folds.values())
    return frame, metrics


def test_mc_dropout_run(cohort: Path, tmp_path: Path) -> None:
    config = _config(cohort, uncertainty="mc_dropout")
    assert config.uncertainty.mc_samples == 20  # mc_dropout implies sampled passes
    run = train_run(config, tmp_path / "run")
    _, metrics = _check_run(run, members=True)
    assert metrics["uncertainty"]["method"] == "mc_dropout"


def test_ensemble_run_trains_seeded_members(cohort: Path, tmp_path: Path) -> None:
    run = train_run(_config(cohort, uncertainty="ensemble", ensemble_size=2), tmp_path / "run")
    assert (run / "fold-0" / "member-1" / "model.pt").is_file()
    _check_run(run, members=True)


def test_cli_evidential_from_yaml_and_flags(cohort: Path, tmp_path: Path) -> None:
    """YAML keys and CLI flags reach the run; the evidential head comes from the models' HEADS registry."""
    config = {
        "cohort": str(cohort),
        "target": "outcome",
        "fusion": "hemis",
        "folds": 2,
        "epochs": 1,
        "spacing": 4.0,
        "model": SMALL_MODEL,
        "uncertainty": "evidential",
        "alpha": 0.3,
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    args = [
        "train",
        "--config",
        str(tmp_path / "train.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--calibrate",
        "--alpha",
        "0.2",
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    from fusemed.models import HEADS

    assert "evidential" in HEADS
    state = torch.load(tmp_path / "run" / "fold-0" / "model.pt", weights_only=True)
    assert "head.steps" in state and state["head.linear.weight"].shape[0] == 2  # Dirichlet over 2 classes
    config = Run.open(tmp_path / "run").config
    unc = config.uncertainty
    assert unc.method == "evidential" and unc.calibrate and unc.alpha == 0.2
    frame = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert (frame["epistemic"] > 0).all()  # Dirichlet draws disagree


def test_bad_uncertainty_name_fails_before_training(cohort: Path) -> None:
    with pytest.raises(ValueError, match="did you mean"):
        _config(cohort, uncertainty="mc_dropuot")
