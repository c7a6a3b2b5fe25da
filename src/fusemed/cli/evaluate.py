"""`fusemed evaluate RUN [--cohort DIR]`: recompute a run's metrics, or score it on another cohort."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console
from fusemed.cli.detection import print_detection_metrics
from fusemed.cli.train import print_metrics

#: run kind -> how its metrics are shown (a kind without an entry: the file's path only)
SHOW_METRICS = {"prognosis": print_metrics, "detection": print_detection_metrics}


def evaluate_command(
    run: Path = typer.Argument(..., help="Run folder written by `fusemed train`."),
    cohort: Path | None = typer.Option(None, "--cohort", help="Score the run on every subject of this cohort."),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder (prognosis; default RUN/evaluation-<cohort>)."),
) -> None:
    """Recompute RUN/metrics.json (prognosis: from its out-of-fold predictions; detection: on its held-out
    test split), or evaluate the trained run on another cohort's subjects."""
    from fusemed.run import Run

    opened = Run.open(run)
    metrics, path = opened.spec.evaluate(opened, cohort, out)
    console.print(f"metrics written to {escape(str(path))}")
    if opened.kind in SHOW_METRICS:
        SHOW_METRICS[opened.kind](metrics, f"{run.name}: {opened.kind} metrics")
