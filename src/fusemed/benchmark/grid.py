"""Expand a benchmark config into cohorts to simulate and cells to train; say which are already done.

Layout under the output folder::

    DIR/cohorts/<cohort id>/                     simulated or dataset cohort (cohort.yaml, manifest.csv[, truth/])
    DIR/runs/<cohort id>/<fusion>-<uncertainty>[-<variant>]-s<seed>/   one training run per cell
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusemed.benchmark.config import AdviseSpec, BenchmarkConfig, CohortGrid


@dataclass(frozen=True)
class CohortJob:
    """One cohort of the grid: written into ``folder`` (simulator or dataset loader) unless ``spec.path``
    points at an existing one."""

    cohort_id: str
    missing: float
    folder: Path
    spec: CohortGrid
    source: CohortJob | None = None  # the complete cohort this one hides modalities of (``advise:``)
    scheme: str = ""

    def train(self, shared: dict[str, Any]) -> dict[str, Any]:
        """The grid's shared training keys, with this cohort's own target if it names one."""
        return {**shared, **({"target": self.spec.target} if self.spec.target else {})}

    @property
    def simulated(self) -> bool:
        """Written by the benchmark (simulator or dataset loader), not an existing folder."""
        return self.spec.path is None

    @property
    def complete(self) -> bool:
        """Already written: simulated cohorts also need their truth; a dataset's may have none (real data)."""
        return cohort_complete(self.folder, truth=self.spec.dataset is None)


@dataclass
class Cell:
    """One training run of the grid (picklable: it crosses process boundaries)."""

    cohort_id: str
    missing: float
    fusion: str
    uncertainty: str
    seed: int
    cohort_dir: Path
    run_dir: Path
    task: str = "prognosis"
    train: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    variant: str = ""
    transfers: dict[str, Path] = field(default_factory=dict)  # new cohorts predicted: name -> cohort folder
    reveal_dir: Path | None = None  # advise: the complete cohort whose hidden modalities are revealed
    advise: AdviseSpec | None = None

    @property
    def name(self) -> str:
        return f"{self.cohort_id}/{self.run_dir.name}"

    @property
    def model(self) -> str:
        """The model this cell scores, across seeds: fusion, then uncertainty and variant where they vary."""
        return "-".join(p for p in (self.fusion, "" if self.uncertainty == "none" else self.uncertainty,
                                    self.variant) if p)

    @property
    def complete(self) -> bool:
        """Trained, and evaluated on every new cohort of the grid."""
        return run_complete(self.run_dir) and all((self.run_dir / transfer_folder(name) / "metrics.json").is_file()
                                                  for name in self.transfers) and (
            self.advise is None or (self.run_dir / ADVISE / "realised.csv").is_file())


def transfer_folder(name: str) -> str:
    """Where a cell's predictions of a new cohort go, inside its run folder."""
    return f"transfer-{name}"


#: where a cell's advice and the realised changes go (``advise:``)
ADVISE = "advise"


def cohort_complete(folder: Path, *, truth: bool = True) -> bool:
    """A simulated cohort is complete once its manifest, spec and truth table are all written.

    ``truth=False`` (dataset loaders): the spec and manifest suffice — ``write_cohort`` writes them last,
    after every file and any ``truth/``.
    """
    files = ("cohort.yaml", "manifest.csv") + (("truth/oracle.csv",) if truth else ())
    return all((folder / f).is_file() for f in files)


def run_complete(run: Path) -> bool:
    """Training writes ``predictions.csv`` then ``metrics.json`` last: both present = the cell is done."""
    return (run / "metrics.json").is_file() and ((run / "predictions.csv").is_file()
                                                 or (run / "detections.csv").is_file())


def plan(config: BenchmarkConfig, out: Path) -> tuple[list[CohortJob], list[Cell]]:
    """Every cohort and every cell of the grid, in a stable order (cohorts outer, seeds inner)."""
    out = Path(out)
    jobs: list[CohortJob] = []
    for spec in config.cohorts:
        for cohort_id, missing in spec.cohort_ids():
            folder = Path(spec.path) if spec.path is not None else out / "cohorts" / cohort_id
            jobs.append(CohortJob(cohort_id, missing, folder, spec))
    new_cohorts: dict[str, dict[str, Path]] = {}  # training cohort id -> {name: new cohort it predicts}
    for job in list(jobs):
        for t in job.spec.transfer:
            site_seed = job.spec.site_seed if job.spec.site_seed is not None else job.spec.seed
            spec = job.spec.model_copy(update={"subjects": t.subjects, "seed": t.seed, "transfer": [],
                                               "site_seed": site_seed if t.sites == "same" else None})
            new_id = f"{job.cohort_id}-new-{t.name}"
            jobs.append(CohortJob(new_id, job.missing, out / "cohorts" / new_id, spec))
            new_cohorts.setdefault(job.cohort_id, {})[t.name] = out / "cohorts" / new_id
    for job in list(jobs):
        if job.spec.advise is not None:
            rate = job.spec.advise.hide
            for scheme in job.spec.advise.schemes:
                hidden_id = f"{job.cohort_id}-hide{int(round(100 * rate)):02d}{scheme}"
                jobs.append(CohortJob(hidden_id, rate, out / "cohorts" / hidden_id, job.spec, job, scheme))
    ids = [j.cohort_id for j in jobs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"benchmark {config.name!r}: cohorts listed twice: {', '.join(duplicates)}")
    cells = []
    for job in jobs:
        if any(job.folder in named.values() for named in new_cohorts.values()):
            continue  # a new cohort is predicted, not trained on
        if job.spec.advise is not None and job.source is None:
            continue  # a complete cohort whose copies hide modalities: revealed, not trained on
        first = len(cells)
        for fusion in config.fusions:
            for unc in config.uncertainty:
                for variant in config.variants or {"": {}}:
                    train = {**job.train(config.train), **config.variants.get(variant, {})}
                    for seed in config.seeds:
                        name = "-".join(p for p in (fusion, unc if config.task == "prognosis" else "", variant,
                                                    f"s{seed}") if p)
                        cells.append(Cell(job.cohort_id, job.missing, fusion, unc, seed, job.folder,
                                          out / "runs" / job.cohort_id / name, config.task, train,
                                          config.threads_per_job, variant))
        if config.task == "prognosis":  # baselines have no uncertainty axis: one cell per seed
            for name in (job.spec.baselines if job.spec.baselines is not None else config.baselines):
                for seed in config.seeds:
                    cells.append(Cell(job.cohort_id, job.missing, name, "none", seed, job.folder,
                                      out / "runs" / job.cohort_id / f"{name}-none-s{seed}", config.task,
                                      baseline_options(job.train(config.train)), config.threads_per_job))
        if job.source is not None:
            for cell in cells[first:]:
                cell.reveal_dir, cell.advise = job.source.folder, job.spec.advise
    if config.task == "detection":  # detectors have no uncertainty axis: one cell per (cohort, detector, seed)
        seen: dict[Path, Cell] = {}
        for cell in cells:
            seen.setdefault(cell.run_dir, cell)
        cells = list(seen.values())
    for cell in cells:
        cell.transfers = new_cohorts.get(cell.cohort_id, {})
    return jobs, cells


#: training keys that only concern networks (a baseline's config refuses member-making ones)
NETWORK_ONLY = {"mc_samples", "ensemble_size"}


def baseline_options(train: dict[str, Any]) -> dict[str, Any]:
    """The grid's shared training keys that a classical baseline accepts."""
    return {k: v for k, v in train.items() if k not in NETWORK_ONLY}


def applicable(cell: Cell) -> bool:
    """False for a classical baseline that cannot predict the cell's target kind (e.g. cox on a binary
    target); such a cell is left out of the grid, not counted as failed. Needs the cohort on disk."""
    from fusemed.models.baselines import BASELINES

    if cell.fusion not in BASELINES or run_complete(cell.run_dir):
        return True
    from fusemed.cohort.cohort import SPEC_FILE
    from fusemed.cohort.spec import CohortSpec

    spec = CohortSpec.from_yaml(cell.cohort_dir / SPEC_FILE)  # the target's kind only: no manifest to read
    target = cell.train.get("target") or next(iter(spec.targets))
    return spec.targets[target].kind.value in BASELINES[cell.fusion].tasks


def nominal_missing(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
