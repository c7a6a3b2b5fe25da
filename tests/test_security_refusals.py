"""Issue 13 item 10: refusals are one line naming the cause, never a library's words or a traceback."""

from __future__ import annotations

import pytest
from training_helpers import make_training_cohort
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.training.splits import make_folds


def test_too_few_subjects_per_fold_is_named():
    with pytest.raises(ValueError, match=r"fold 0: .*training subjects.*--folds"):
        make_folds(["a", "b", "c"], ["0", "1", "0"], [None] * 3, 2, 0, 0.2)


def test_cli_train_with_three_subjects_and_two_folds_is_a_one_line_refusal(tmp_path):
    cohort = make_training_cohort(tmp_path / "c", n=3)
    result = CliRunner().invoke(app, ["train", "--cohort", str(cohort), "--target", "outcome", "--folds", "2",
                                      "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "--folds" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1


def test_verbose_shows_the_traceback(tmp_path):
    (tmp_path / "c.yaml").write_text("a: &a [1]\nb: *a\n")
    args = ["train", "--out", str(tmp_path / "run"), "--config", str(tmp_path / "c.yaml")]
    quiet = CliRunner().invoke(app, args)
    assert quiet.exit_code == 1 and isinstance(quiet.exception, SystemExit)
    loud = CliRunner().invoke(app, ["--verbose", *args])
    assert loud.exit_code != 0 and isinstance(loud.exception, ValueError)
