"""`fusemed report RUN [RUN ...] --out report.html`: compare trained runs in one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console, err_console


def report_command(
    runs: list[Path] = typer.Argument(..., help="Run folders written by `fusemed train` (or a benchmark)."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    cohort: Path | None = typer.Option(None, "--cohort", help="Cohort folder (default: the runs' own cohort)."),
    n_boot: int = typer.Option(2000, "--n-boot", min=100, help="Bootstrap resamples for the AUROC CIs."),
    advice: Path | None = typer.Option(None, "--advice", help="`fusemed advise` CSV for the patient cards "
                                       "(default: advice.csv in the focus run's folder, if any)."),
) -> None:
    """Write an HTML report: comparison table with CIs and paired tests, calibration, missing-modality
    robustness, conformal coverage per pattern, patient cards. Figures are embedded; it opens offline."""
    from fusemed.report import build_report

    try:
        with err_console.status("building report"):
            path = build_report(runs, out, cohort, n_boot=n_boot, advice=advice)
    except (FileNotFoundError, ValueError) as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}")
        raise typer.Exit(code=1) from None
    console.print(f"report: [bold]{escape(str(path))}[/]")
