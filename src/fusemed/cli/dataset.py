"""`fusemed dataset NAME --out DIR`: lay a dataset (real, shipped in a package, or the independent
generator) out as a cohort folder."""

from __future__ import annotations

from pathlib import Path

import typer

from fusemed.cli.console import console, err_console


def dataset_command(
    name: str = typer.Argument(..., help="mice, whas500, wdbc, flchain or independent (see docs/datasets.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Cohort folder to write."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the dropped views (and of the generator)."),
    missing: float = typer.Option(0.0, "--missing", min=0.0, max=0.9, help="Share of subjects losing a view."),
    subjects: int | None = typer.Option(None, "--subjects", "-n", min=4, help="independent only: cohort size."),
) -> None:
    """Write a dataset as a cohort folder, from installed packages only (nothing is downloaded)."""
    from fusemed.cohort import validate_cohort
    from fusemed.datasets import DatasetUnavailable, load_dataset, takes_subjects
    from fusemed.models.registry import UnknownNameError

    try:
        if subjects is not None and not takes_subjects(name):
            err_console.print(f"[red]error:[/] dataset {name!r} has a fixed size; --subjects is for generators")
            raise typer.Exit(code=2)
        options = {} if subjects is None else {"subjects": subjects}
        root = load_dataset(name, out, seed=seed, missing=missing, **options)
    except (UnknownNameError, DatasetUnavailable) as err:
        err_console.print(f"[red]error:[/] {err}")
        raise typer.Exit(code=2) from None
    report = validate_cohort(root)
    if not report.ok:  # a loader bug, not the user's: say so loudly
        for problem in report.problems:
            err_console.print(f"[red]✗[/] {problem}")
        raise typer.Exit(code=1)
    s = report.summary
    views = ", ".join(f"{k} {v}" for k, v in s["availability"].items())
    console.print(f"[green]✓[/] wrote {name} ({s['subjects']} subjects; {views}) to [bold]{root}[/]")
