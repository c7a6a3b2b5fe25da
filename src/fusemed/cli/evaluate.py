"""`fusemed evaluate RUN [--cohort DIR]`: recompute a run's metrics, or score it on another cohort."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console


def evaluate_command(
    run: Path = typer.Argument(..., help="Run folder written by `fusemed train`."),
    cohort: Path | None = typer.Option(None, "--cohort", help="Score the fold ensemble on this cohort."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default RUN/evaluation-<cohort>)."),
) -> None:
    """Recompute RUN/metrics.json from its predictions, or evaluate the trained folds on new subjects."""
    from fusemed.cli.detection import evaluate_detection, is_detection_run
    from fusemed.cli.train import _print_metrics
    from fusemed.training import evaluate_run

    if is_detection_run(run):
        evaluate_detection(run, cohort)
        return
    evaluate_run(run, cohort, out)
    if cohort is None:
        path = run / "metrics.json"
    else:
        from fusemed.cohort import Cohort

        path = (out or run / f"evaluation-{Cohort.load(cohort).name}") / "metrics.json"
    console.print(f"metrics written to {escape(str(path))}")
    _print_metrics(path)
