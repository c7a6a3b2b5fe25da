"""`fusemed predict RUN --cohort DIR --out FILE.csv`: apply a trained run (ensemble over folds)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console


def predict_command(
    run: Path = typer.Argument(..., help="Run folder written by `fusemed train`."),
    cohort: Path = typer.Option(..., "--cohort", help="Cohort folder; any modality may be missing."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="CSV to write (subject, pattern, p, p_std, + y_true); for a detection run, a folder "
        "of per-subject maps and cluster tables.",
    ),
) -> None:
    """Predict every subject of COHORT with the average of RUN's fold models."""
    from fusemed.cli.detection import is_detection_run, predict_detection
    from fusemed.training import predict_run

    if is_detection_run(run):
        predict_detection(run, cohort, out)
        return
    path = predict_run(run, cohort, out)
    console.print(f"predictions written to {escape(str(path))}")
