"""What one cohort job and one cell do by default: simulate, then train (prognosis) or detect (epilepsy).

These are module-level functions so a process pool can pickle them; tests pass their own stubs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fusemed.benchmark.grid import Cell, CohortJob

log = logging.getLogger(__name__)


def simulate_job(job: CohortJob, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the job's cohort: its ``fusemed.datasets`` loader, else ``fusemed.simulate.simulate_cohort``."""
    s = job.spec
    if job.source is not None:  # advise: a copy of the complete cohort with modalities hidden
        from fusemed.simulate import SimulationConfig
        from fusemed.simulate.hide import hide_modalities

        config = SimulationConfig(scenario=s.scenario, n_subjects=s.subjects, seed=s.seed, spacing=s.spacing,
                                  missing=job.missing, missing_scheme=job.scheme, sites=s.sites, site_seed=s.site_seed)
        return hide_modalities(job.source.folder, job.folder, config)
    if s.dataset is not None:
        from fusemed.datasets import load_dataset, takes_subjects

        options = {"subjects": s.subjects} if takes_subjects(s.dataset) else {}
        root = load_dataset(s.dataset, job.folder, seed=s.seed, missing=job.missing, **options)
        if progress is not None:
            progress(1, 1)
        return root
    from fusemed.simulate import simulate_cohort

    sites = {} if s.site_seed is None else {"site_seed": s.site_seed}
    return simulate_cohort(s.scenario, job.folder, n_subjects=s.subjects, seed=s.seed, spacing=s.spacing,
                           missing=job.missing, missing_scheme=s.scheme, sites=s.sites, progress=progress, **sites)


def train_cell(cell: Cell, callbacks: Sequence[Any] = ()) -> Path:
    """Train one cell into ``cell.run_dir`` (resumes a partial run) and return it."""
    import torch

    torch.set_num_threads(cell.threads)
    if cell.task == "detection":
        return _detect_cell(cell)
    from fusemed.training import TrainConfig, train_run

    options = {"progress": False, **cell.train}
    config = TrainConfig(cohort=cell.cohort_dir, fusion=cell.fusion, uncertainty=cell.uncertainty,
                         seed=cell.seed, **options)
    run = train_run(config, cell.run_dir, callbacks=callbacks)
    for name, cohort in cell.transfers.items():  # new patients: every fold model, the run's post-hoc steps
        from fusemed.benchmark.grid import transfer_folder
        from fusemed.training import evaluate_run

        if not (run / transfer_folder(name) / "metrics.json").is_file():
            evaluate_run(run, cohort, run / transfer_folder(name))
    if cell.advise is not None:  # advise on the hidden modalities, then reveal them
        from fusemed.benchmark.advise import advise_cell

        advise_cell(cell, run)
    return run


def _detect_cell(cell: Cell) -> Path:
    """Lesion detection (``fusemed.diagnosis``): train a detector, then evaluate it on its test split."""
    try:
        from fusemed.diagnosis import evaluate_detector, train_detector
    except ImportError as err:  # the diagnosis package is optional in a checkout without it
        raise RuntimeError("detection benchmarks need fusemed.diagnosis (lesion detection), not installed") from err
    options = dict(cell.train)
    options["trainer"] = {"progress": False, **(options.get("trainer") or {})}  # as prognosis cells: no bars
    target = options.pop("target", "lesion")
    run = train_detector(cell.cohort_dir, cell.fusion, cell.run_dir, target=target, seed=cell.seed, **options)
    evaluate_detector(run, cell.cohort_dir)
    return run
