"""`fusemed validate FOLDER`: read a cohort once, print a summary, list every problem."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from fusemed.cli.console import console, progress
from fusemed.cohort import Cohort, validate_cohort
from fusemed.cohort.validate import ValidationReport


def _count_subjects(folder: Path) -> int | None:
    cohort, _ = Cohort.read(folder)
    return None if cohort is None else len(cohort)


def render_report(report: ValidationReport) -> None:
    """Print the summary tables, then the warnings and problems."""
    s = report.summary
    if s:
        console.print(
            f"[bold]{escape(s['name'])}[/]: {s['subjects']} subjects, "
            f"{len(s['sites'])} site(s) ({escape(', '.join(f'{k}: {v}' for k, v in s['sites'].items()))})"
        )
        avail = Table(title="Modality availability")
        avail.add_column("modality")
        avail.add_column("subjects", justify="right")
        avail.add_column("%", justify="right")
        for name, count in s["availability"].items():
            avail.add_row(escape(name), str(count), f"{100 * count / max(s['subjects'], 1):.0f}")
        console.print(avail)
        patterns = Table(title="Missing-modality patterns (present modalities)")
        patterns.add_column("pattern")
        patterns.add_column("subjects", justify="right")
        for pattern, count in s["patterns"].items():
            patterns.add_row(escape(pattern), str(count))
        console.print(patterns)
        if s["targets"]:
            targets = Table(title="Targets")
            targets.add_column("target")
            targets.add_column("kind")
            targets.add_column("balance")
            for name, t in s["targets"].items():
                if "counts" in t:
                    balance = ", ".join(f"{k}: {v}" for k, v in t["counts"].items())
                elif "events" in t:
                    balance = f"{t['events']} events / {t['n']} (median time {t['median_time']})"
                else:
                    balance = f"{t['n']} subjects"
                targets.add_row(escape(name), t["kind"], escape(balance))
            console.print(targets)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if report.problems:
        console.print(f"[bold red]{len(report.problems)} problem(s):[/]")
        for problem in report.problems:
            console.print(f"  [red]✗[/] {escape(str(problem))}", soft_wrap=True)
    else:
        console.print("[bold green]✓ cohort is valid[/]")


def validate_command(
    folder: Path = typer.Argument(..., help="Cohort folder holding cohort.yaml and manifest.csv/.tsv."),
) -> None:
    """Check a cohort folder: every file read once, every problem listed with subject, file and column."""
    total = _count_subjects(folder)
    with progress() as bar:
        task = bar.add_task("validating", total=total)
        report = validate_cohort(folder, on_case=lambda _case: bar.advance(task))
    render_report(report)
    if not report.ok:
        raise typer.Exit(code=1)
