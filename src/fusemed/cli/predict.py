"""`fusemed predict RUN --cohort DIR --out PATH`: apply a trained run to every subject of a cohort."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console

#: run kind -> what `predict` wrote (``{path}``: its return value)
WRITTEN = {
    "prognosis": "predictions written to {path}",
    "detection": "maps and cluster tables written to {path}/ (<subject>_prob.nii.gz, <subject>_uncertainty.nii.gz, "
                 "<subject>_clusters.csv)",
}


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
    """Predict every subject of COHORT with RUN (prognosis: its fold models, post-hoc steps applied)."""
    from fusemed.run import Run

    opened = Run.open(run)
    path = opened.spec.predict(opened, cohort, out)
    console.print(WRITTEN.get(opened.kind, "written to {path}").format(path=escape(str(path))))
