"""`fusemed.run.Run`: one self-describing run type, versioned; older layouts refused; verbs dispatch on kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.run import LAYOUT, RUN_KINDS, Run, RunKind, RunLayoutError, RunTask


def test_create_then_open_round_trips(tmp_path: Path) -> None:
    made = Run.create(tmp_path / "run", "prognosis", RunTask("outcome", "binary", 2))
    opened = Run.open(tmp_path / "run")
    assert opened == made and opened.layout == LAYOUT and opened.spec is RUN_KINDS["prognosis"]
    assert opened.metrics == {} and opened.predictions is None and opened.posthoc is None  # tolerant of absences


def test_a_misspelt_kind_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="did you mean 'detection'"):
        Run.create(tmp_path, "detecton", RunTask("lesion", "mask", 2))
    assert not (tmp_path / "run.json").exists()


@pytest.mark.parametrize("verb", [["predict", "--cohort", "c", "--out", "p.csv"], ["evaluate"], ["report"]])
def test_an_older_layout_is_refused_by_every_verb(tmp_path: Path, verb: list[str]) -> None:
    old = tmp_path / "old-run"
    old.mkdir()
    (old / "config.yaml").write_text("cohort: c\ntarget: outcome\n")  # layout 1: no run.json
    result = CliRunner().invoke(app, [verb[0], str(old), *verb[1:], *(["--out", str(tmp_path / "r.html")]
                                                                        if verb[0] == "report" else [])])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "was written by an older fusemed (layout 1, no run.json): retrain it with `fusemed train`" in text


def test_resuming_an_older_layout_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "old-run"
    old.mkdir()
    (old / "config.yaml").write_text("cohort: c\ntarget: outcome\n")
    result = CliRunner().invoke(app, ["train", "--out", str(old)])
    assert result.exit_code == 1 and "older fusemed" in result.output


def test_another_layout_is_refused(tmp_path: Path) -> None:
    Run.create(tmp_path, "prognosis", RunTask("outcome", "binary", 2))
    data = json.loads((tmp_path / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps({**data, "layout": LAYOUT + 1, "fusemed": "9.0"}))
    with pytest.raises(RunLayoutError, match=f"fusemed 9.0 \\(layout {LAYOUT + 1}\\); this fusemed reads layout"):
        Run.open(tmp_path)


def test_verbs_dispatch_on_the_run_kind(tmp_path: Path) -> None:
    """A registered kind is all predict/evaluate need: no `if` on which files a folder holds."""
    calls = []

    class Toy(RunKind):
        name = "toy"

        def predict(self, run: Run, cohort: Path, out: Path) -> Path:
            calls.append(("predict", run.task.name))
            return out

        def evaluate(self, run: Run, cohort: Path | None, out: Path | None) -> tuple[dict, Path]:
            calls.append(("evaluate", run.task.name))
            return {}, run.path / "metrics.json"

    try:
        Run.create(tmp_path / "run", "toy", RunTask("y", "binary", 2))
        toy = RUN_KINDS["toy"]
        assert isinstance(toy, Toy)
        runner = CliRunner()
        predicted = runner.invoke(app, ["predict", str(tmp_path / "run"), "--cohort", "c", "--out", str(tmp_path)])
        assert predicted.exit_code == 0, predicted.output
        evaluated = runner.invoke(app, ["evaluate", str(tmp_path / "run")])
        assert evaluated.exit_code == 0, evaluated.output
        assert calls == [("predict", "y"), ("evaluate", "y")]
    finally:
        RUN_KINDS.pop("toy", None)
