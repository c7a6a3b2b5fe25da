"""`fusemed simulate {epilepsy,coma}`: write a simulated PET-MR cohort with its hidden truth."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fusemed.cli.console import console, err_console, progress


def simulate_command(
    scenario: str = typer.Argument(..., help="epilepsy (diagnosis, lesion detection) or coma (prognosis)."),
    subjects: int = typer.Option(50, "--subjects", "-n", min=1, help="Number of subjects."),
    out: Path = typer.Option(..., "--out", "-o", help="Cohort folder to write."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed: same seed, byte-identical files."),
    spacing: float | None = typer.Option(None, "--spacing", help="Voxel size in mm (default 3 coma, 2 epilepsy)."),
    missing: float = typer.Option(0.0, "--missing", min=0.0, max=0.9, help="Per-modality missingness rate."),
    missing_scheme: str = typer.Option("mcar", "--missing-scheme", help="mcar, mnar or site."),
    sites: int = typer.Option(3, "--sites", min=1, max=26, help="Number of acquisition sites."),
    patient_fraction: float = typer.Option(0.5, "--patient-fraction", help="Epilepsy: share of patients."),
    layout: str = typer.Option(
        "cohort", "--layout", help="cohort (cohort.yaml + manifest.csv) or bids (for `fusemed import bids`)."
    ),
) -> None:
    """Simulate a cohort on real anatomy (MNI152 + fsaverage5), in the cohort format, with truth/."""
    from pydantic import ValidationError

    from fusemed.simulate import simulate_cohort

    with progress() as bar:
        task = bar.add_task(f"simulating {scenario}", total=subjects)
        try:
            root = simulate_cohort(
                scenario,
                out,
                n_subjects=subjects,
                seed=seed,
                spacing=spacing,
                missing=missing,
                missing_scheme=missing_scheme,
                sites=sites,
                patient_fraction=patient_fraction,
                layout=layout,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        except ValidationError as err:
            for e in err.errors():
                err_console.print(f"[red]error:[/] {escape(str(e['msg']))}")
            raise typer.Exit(code=2) from None
        except ValueError as err:
            err_console.print(f"[red]error:[/] {escape(str(err))}")
            raise typer.Exit(code=2) from None
    console.print(f"[green]✓[/] wrote {subjects} subjects to [bold]{escape(str(root))}[/] "
                  f"(truth in {escape(str(root / 'truth'))})")
