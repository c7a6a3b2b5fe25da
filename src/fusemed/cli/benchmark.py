"""`fusemed benchmark CONFIG.yaml --out DIR`: run (or resume) a grid of cohorts × fusions × uncertainty × seeds."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console, err_console, progress


def benchmark_command(
    config: Path = typer.Argument(..., help="Benchmark YAML (see benchmarks/coma.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (cohorts, runs, results); rerun to resume."),
    n_jobs: int | None = typer.Option(None, "--n-jobs", min=1, help="Cells trained at once (overrides the YAML)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Also write report.html."),
    collect_only: bool = typer.Option(False, "--collect-only", help="Train nothing: results of the cells done."),
) -> None:
    """Simulate the grid's cohorts, train every cell not yet complete, write results.csv, results.md, report.html."""
    from fusemed.benchmark import BenchmarkConfig, run_benchmark

    try:
        cfg = BenchmarkConfig.from_yaml(config)
    except (OSError, ValueError) as err:
        err_console.print(f"[bold red]error:[/] {escape(f'{config}: {err}')}")
        raise typer.Exit(code=1) from None
    if n_jobs is not None:
        cfg = cfg.model_copy(update={"n_jobs": n_jobs})
    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_event(stage: str, name: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task("cohorts" if stage == "cohort" else "cells", total=total)
            bar.update(tasks[stage], completed=done, description=f"{stage}s · {name}")

        result = run_benchmark(cfg, out, on_event=on_event, report=report, train=not collect_only)
    console.print(
        f"[bold]{escape(cfg.name)}[/]: {len(result.trained)} cell(s) trained, {len(result.skipped)} already "
        f"complete, {len(result.failed)} failed, {result.seconds / 60:.1f} min"
    )
    for name, error in result.failed.items():
        console.print(f"  [red]✗[/] {escape(f'{name}: {error}')}")
    console.print(escape(f"results: {result.results_md}" + (f"\nreport: {result.report}" if result.report else "")))
    if result.failed:
        raise typer.Exit(code=1)
