"""`fusemed train`: every flag is honoured or refused with a reason for each target kind, before training.

The long work is stubbed (``train_run`` / ``train_from_config`` write the config they were given), so a
flag that reaches neither the saved config nor a refusal is caught here: a new option of `fusemed train`
enters the parametrisation by itself (flags are read from the command) and needs a value in ``VALUES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from cohort_factory import edit_spec, make_cohort
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.training.config import ALIASES, TOP_LEVEL, leaf_owners, route

#: a valid value for every flag of `fusemed train` (None: a boolean flag given by its name)
VALUES: dict[str, tuple[list[str], Any]] = {
    "fusion": (["--fusion", "late"], "late"),
    "model": (["--model", "unet"], "unet"),
    "modalities": (["--modalities", "t1"], ["t1"]),
    "folds": (["--folds", "3"], 3),
    "epochs": (["--epochs", "2"], 2),
    "patience": (["--patience", "2"], 2),
    "seed": (["--seed", "7"], 7),
    "batch_size": (["--batch-size", "4"], 4),
    "lr": (["--lr", "0.01"], 0.01),
    "spacing": (["--spacing", "4.0"], 4.0),
    "moddrop": (["--moddrop", "0.3"], 0.3),
    "uncertainty": (["--uncertainty", "ensemble"], "ensemble"),
    "calibrate": (["--calibrate"], True),
    "alpha": (["--alpha", "0.2"], 0.2),
    "calibration_fraction": (["--calibration-fraction", "0.3"], 0.3),
    "accelerator": (["--accelerator", "cpu"], "cpu"),
    "devices": (["--devices", "2"], 2),
    "strategy": (["--strategy", "ddp"], "ddp"),
    "progress": (["--no-progress"], False),
}
#: what lesion detection takes, and the DetectionConfig key that must hold it ("params.x": a hyperparameter,
#: "trainer.x": a device setting of the shared Lightning trainer)
DETECTION_TAKES = {"model": "model", "modalities": "modalities", "spacing": "spacing", "seed": "seed",
                   "calibration_fraction": "calibration_fraction", "epochs": "params.epochs", "lr": "params.lr",
                   "batch_size": "params.batch_size", "moddrop": "params.modality_dropout",
                   "accelerator": "trainer.accelerator", "devices": "trainer.devices", "strategy": "trainer.strategy",
                   "progress": "trainer.progress"}
#: TrainConfig leaves that are deliberately YAML-only (`--config`): tuning a user rarely touches per command
YAML_ONLY = {"pinned", "val_fraction", "grid", "max_grid", "cache", "search", "weight_decay", "precision",
             "num_workers", "deterministic", "mc_samples", "ensemble_size", "conformal_score",
             "conformal_groupby", "calibration_split"}
TARGETS = {"binary": "outcome", "multiclass": "grade", "survival": "survival", "mask": "lesion"}


def train_flags() -> list[str]:
    """The options of `fusemed train`, by parameter name (read from the command, not listed by hand)."""
    command = typer.main.get_command(app).commands["train"]
    return [p.name for p in command.params if p.name not in ("out", "config", "cohort", "target")]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_cohort(tmp_path_factory.mktemp("flags"))
    edit_spec(root, lambda s: s["targets"].update(grade={"kind": "multiclass", "column": "sex"}))
    return root


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training writes its config and nothing else; no cohort volume is read."""
    import fusemed.diagnosis
    import fusemed.diagnosis.api
    import fusemed.training

    def train_run(cfg: Any, out: Path, **_: Any) -> Path:
        cfg.to_yaml(Path(out) / "config.yaml")
        return Path(out)

    monkeypatch.setattr(fusemed.training, "train_run", train_run)
    monkeypatch.setattr(fusemed.diagnosis.api, "train_from_config", train_run)
    monkeypatch.setattr(fusemed.diagnosis, "evaluate_detector", lambda run, cohort, **_: {})


def test_every_flag_has_a_test_value() -> None:
    assert sorted(train_flags()) == sorted(VALUES)


def test_every_config_leaf_is_a_flag_or_deliberately_yaml_only() -> None:
    from fusemed.models import ModelConfig

    flags = {ALIASES.get(f, (None, f))[1] for f in train_flags()}
    network = set(ModelConfig.model_fields)  # network options: YAML `model: {...}` only
    leaves = (set(leaf_owners()) | set(TOP_LEVEL)) - {"cohort", "target"}
    assert sorted(leaves - flags - YAML_ONLY - network) == []
    assert sorted(YAML_ONLY & flags) == []  # a flag is not also listed as YAML-only


@pytest.mark.parametrize("kind", sorted(TARGETS))
@pytest.mark.parametrize("name", sorted(VALUES))
def test_flag_is_honoured_or_refused(name: str, kind: str, cohort: Path, tmp_path: Path, stubbed: None) -> None:
    args, expected = VALUES[name]
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--cohort", str(cohort), "--target", TARGETS[kind],
                                      "--out", str(out), *args])
    detection = kind == "mask"
    honoured = name in DETECTION_TAKES if detection else name != "model"
    if not honoured:
        assert result.exit_code != 0, f"{name} on a {kind} target was accepted"
        assert f"--{name.replace('_', '-')}" in result.output, result.output
        assert not (out / "config.yaml").exists()
        return
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    if detection:
        section, _, leaf = DETECTION_TAKES[name].partition(".")
        value = saved[section][leaf] if leaf else saved[section]
    else:
        section, leaves = next(iter(route({name: expected}).items()))
        value = saved[section] if section in TOP_LEVEL else saved[section][next(iter(leaves))]
    assert value == expected


def test_refusals_say_why(cohort: Path, tmp_path: Path, stubbed: None) -> None:
    def run(target: str, *args: str) -> str:
        result = CliRunner().invoke(app, ["train", "--cohort", str(cohort), "--target", target,
                                          "--out", str(tmp_path / "run"), *args])
        assert result.exit_code == 1
        return " ".join(result.output.split())

    assert "detection uses --model (one of" in run("lesion", "--fusion", "late")
    assert "issue 15" in run("lesion", "--uncertainty", "ensemble")
    assert "no validation split to stop early on" in run("lesion", "--patience", "3")
    assert "target 'outcome' is binary: use --fusion" in run("outcome", "--model", "unet")
    assert "detector 'zscore'" in run("lesion", "--model", "zscore", "--epochs", "3")  # zscore is not trained


def test_misspelt_fusion_is_refused_before_any_cohort_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusemed.cohort

    def reading(*_: Any, **__: Any) -> None:
        raise AssertionError("a cohort file was read")

    monkeypatch.setattr(fusemed.cohort.CohortSpec, "from_yaml", reading)
    monkeypatch.setattr(fusemed.cohort.Cohort, "load", reading)
    out = tmp_path / "run"
    for cohort in (tmp_path / "does-not-exist", make_cohort(tmp_path / "c")):
        result = CliRunner().invoke(app, ["train", "--cohort", str(cohort), "--target", "outcome", "--out", str(out),
                                          "--fusion", "hemsi"])
        assert result.exit_code == 1
        assert "did you mean 'hemis'" in result.output and "--fusion hemsi" in result.output
        assert not out.exists()


def test_misspelt_fusion_is_refused_without_importing_the_frameworks(tmp_path: Path) -> None:
    """The refusal is immediate because it needs no framework: names are checked from the declared
    registries, so torch, MONAI, Lightning and scikit-learn are never imported (they take ~8 s on 2 cores)."""
    import subprocess
    import sys

    code = ("import sys\nfrom typer.testing import CliRunner\nfrom fusemed.cli.main import app\n"
            f"r = CliRunner().invoke(app, ['train', '--cohort', {str(tmp_path / 'c')!r}, '--fusion', 'hemsi', "
            f"'--out', {str(tmp_path / 'run')!r}])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'monai', 'lightning', 'sklearn'})\n"
            "print(r.exit_code, heavy, 'hemis' in r.output)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "[]", "True"]
