"""`fusemed import bids BIDS_DIR --out COHORT`: a BIDS dataset becomes a cohort folder, then is validated."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console

import_app = typer.Typer(help="Import a study kept in another layout as a fusemed cohort.", no_args_is_help=True)


@import_app.command("bids")
def bids_command(
    bids_dir: Path = typer.Argument(..., help="BIDS dataset folder (holds dataset_description.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="Cohort folder to write."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="import.yaml (default: BIDS_DIR/code/fusemed-import.yaml, else built-in rules)."
    ),
    link: str = typer.Option(
        "auto",
        "--link",
        help="relative (manifest paths into the BIDS folder), symlink (links under COHORT/bids), auto.",
    ),
) -> None:
    """Build a cohort from BIDS entities, participants.tsv, phenotype/ and derivatives; no image is copied."""
    from fusemed.cli.validate import render_report
    from fusemed.cohort import CohortError
    from fusemed.importers import import_bids

    try:
        result = import_bids(bids_dir, out, config=config, link=link)
    except CohortError as err:
        console.print(f"[bold red]{len(err.problems)} problem(s) in the import config:[/]")
        for problem in err.problems:
            console.print(f"  [red]✗[/] {escape(str(problem))}")
        raise typer.Exit(code=2) from None
    for note in result.notes:
        console.print(f"[cyan]•[/] {escape(note)}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if result.problems:
        console.print(f"[bold red]{len(result.problems)} problem(s) in the BIDS dataset; nothing written:[/]")
        for problem in result.problems:
            console.print(f"  [red]✗[/] {escape(str(problem))}")
        raise typer.Exit(code=1)
    console.print(f"[green]✓[/] wrote [bold]{escape(str(result.root))}[/]; validating it:")
    assert result.report is not None
    render_report(result.report)
    if not result.report.ok:
        raise typer.Exit(code=1)
