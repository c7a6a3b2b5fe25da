"""`fusemed demo [--out DIR]`: simulate, train three fusions with uncertainty, evaluate, report — one command."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from fusemed.cli.console import console, progress


def results_table(results_csv: Path, title: str) -> Table:
    """AUROC (CI), ECE, conformal coverage and set size per run, from a benchmark's results.csv."""
    import pandas as pd

    frame = pd.read_csv(results_csv)
    table = Table(title=title)
    for col in ("fusion", "AUROC [95 % CI]", "Δ vs early", "ECE", "coverage", "set size"):
        # the model name folds (the oracles' names are long), the numbers never do: an 80-column terminal
        # must still show every value
        table.add_column(col, justify="left" if col == "fusion" else "right",
                         no_wrap=col not in ("fusion", "Δ vs early"), min_width={"fusion": 8, "Δ vs early": 9}.get(col),
                         max_width=16 if col == "fusion" else None)

    def num(v: object, d: int = 3) -> str:
        return "–" if v is None or pd.isna(v) else f"{v:.{d}f}"

    for _, r in frame.iterrows():
        delta = "–" if pd.isna(r.get("vs_early_diff")) else f"{r['vs_early_diff']:+.3f} (p={r['vs_early_p']:.2g})"
        name = str(r["run"]) if str(r["run"]).startswith("ORACLE") else str(r.get("fusion", r["run"]))
        table.add_row(
            escape(name),
            f"{num(r['auroc'])} [{num(r['auroc_low'])}, {num(r['auroc_high'])}]",
            delta,
            num(r.get("ece")),
            num(r.get("coverage")),
            num(r.get("mean_set_size"), 2),
        )
    return table


def demo_command(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Folder for the cohort, runs and report."),
    subjects: int = typer.Option(120, "--subjects", min=20, help="Simulated subjects."),
    epochs: int = typer.Option(15, "--epochs", min=1, help="Maximum epochs per fold."),
) -> None:
    """Simulate a small coma cohort, train early, late and hemis fusion with uncertainty, write the report."""
    from fusemed.benchmark.demo import demo_config, run_demo
    start = time.perf_counter()
    labels = {"subject": "simulating subjects", "cohort": "cohorts", "epoch": "training", "cell": "runs"}
    with progress() as bar:
        tasks: dict[str, int] = {}

        def on_event(stage: str, name: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            what = labels.get(stage, stage) + ("" if stage in ("cohort", "subject") else f" · {name}")
            bar.update(tasks[stage], completed=done, total=total, description=what)

        result = run_demo(out, on_event=on_event, config=demo_config(subjects=subjects, epochs=epochs))
    console.print(results_table(result.results_csv, f"demo: {subjects} simulated coma subjects, 30 % missing"))
    for name, error in result.failed.items():
        console.print(f"[red]✗ {escape(name)}[/]: {escape(str(error))}")
    console.print(f"finished in {(time.perf_counter() - start) / 60:.1f} min")
    console.print(f"report: [bold]{escape(str(result.report))}[/]")
    if result.failed:
        raise typer.Exit(code=1)
