"""`fusemed advise RUN --cohort DIR --out advice.csv`: which missing exam would most change each answer."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console


def advise_command(
    run: Path = typer.Argument(..., help="Run folder with posthoc.json (trained with --calibrate or an "
                               "uncertainty method)."),
    cohort: Path = typer.Option(..., "--cohort", help="The patients; those missing none of the run's modalities "
                                "get no row."),
    out: Path = typer.Option(..., "--out", help="CSV to write: one row per subject x missing modality, ranked."),
    donors: Path | None = typer.Option(None, "--donors", help="Cohort the plausible values of a missing modality "
                                       "come from (default: the run's training cohort)."),
    k: int = typer.Option(32, "--k", min=2, help="Donors per patient and modality."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap and tie-breaking seed (same seed, same advice)."),
) -> None:
    """Per patient, per missing modality: expected entropy reduction, P(conformal set becomes one label),
    P(decision flips), each with a 95 % interval over donors; rank 1 = the exam to order first."""
    from fusemed.advise import advise_cohort

    frame = advise_cohort(run, cohort, donors=donors, k=k, seed=seed, out=out)
    first = frame[frame["rank"] == 1]["modality"].value_counts()
    summary = ", ".join(f"{m} {n}" for m, n in first.items()) or "nobody is missing a modality"
    console.print(f"advice for {frame['subject'].nunique()} subject(s) written to {escape(str(out))} "
                  f"(first exam: {escape(summary)})")
