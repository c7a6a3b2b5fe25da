"""``run_benchmark``: simulate the grid's cohorts, train its cells (in parallel where allowed), skip what is
done, then write ``results.csv``, ``results.md`` and ``report.html``.

Resumable: a cohort whose files are complete and a cell whose run folder holds ``metrics.json`` are
skipped, and a half-trained cell resumes inside ``train_run`` from its checkpoints. A failing cell is
logged and left out of the results; the others still run.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from fusemed.benchmark import provenance
from fusemed.benchmark.cells import simulate_job, train_cell
from fusemed.benchmark.config import BenchmarkConfig
from fusemed.benchmark.grid import Cell, CohortJob, applicable, plan
from fusemed.benchmark.results import write_results

log = logging.getLogger(__name__)

#: ``on_event(stage, name, done, total)`` — stage is "subject" (simulation), "cohort", "epoch" (training, in
#: process only) or "cell"; drives the CLI progress bars
EventHook = Callable[[str, str, int, int], None]


@dataclass
class BenchmarkResult:
    out: Path
    results_csv: Path
    results_md: Path
    report: Path | None
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _worker_init(threads: int) -> None:
    """Cap BLAS/OpenMP threads before anything imports them (``train_cell`` sets torch's own)."""
    import os

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    from fusemed.cli.quiet import quiet_worker

    if not quiet_worker():  # as quiet as the `fusemed` command that spawned it
        logging.basicConfig(level=logging.WARNING)


def _run_cells(cells: list[Cell], train_fn: Callable[[Cell], Path], n_jobs: int, threads: int,
               tick: Callable[[Cell, str | None], None]) -> None:
    """Train ``cells``: in this process when ``n_jobs == 1``, else in a spawn pool of ``n_jobs`` workers."""
    if n_jobs <= 1 or len(cells) <= 1:
        for cell in cells:
            try:
                train_fn(cell)
                tick(cell, None)
            except Exception as err:  # noqa: BLE001 - one failing cell must not lose the grid
                log.exception("cell %s failed", cell.name)
                tick(cell, f"{type(err).__name__}: {err}")
        return
    context = multiprocessing.get_context("spawn")  # fork after torch threads is unsafe
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, initializer=_worker_init,
                             initargs=(threads,)) as pool:
        pending: dict[Future, Cell] = {pool.submit(train_fn, cell): cell for cell in cells}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                cell = pending.pop(future)
                err = future.exception()
                if err is not None:
                    log.error("cell %s failed: %s", cell.name, err)
                tick(cell, None if err is None else f"{type(err).__name__}: {err}")


def _simulate(jobs: list[CohortJob], simulate_fn: Callable[..., Path], n_jobs: int, threads: int,
              notify: EventHook) -> None:
    """Write the cohorts not yet complete: in this process (per-subject progress) or in a spawn pool."""
    for job in jobs:
        if not job.simulated and not (job.folder / "cohort.yaml").is_file():
            raise FileNotFoundError(f"benchmark cohort {job.folder}: no cohort.yaml")
    todo = [j for j in jobs if j.simulated and not j.complete]
    done = len(jobs) - len(todo)
    notify("cohort", "complete", done, len(jobs))
    if n_jobs <= 1 or len(todo) <= 1:
        for job in todo:
            log.info("simulating cohort %s", job.cohort_id)
            simulate_fn(job, lambda d, t, name=job.cohort_id: notify("subject", name, d, t))
            done += 1
            notify("cohort", job.cohort_id, done, len(jobs))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(todo)), mp_context=context, initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(simulate_fn, job): job for job in todo}
        for future in futures:
            future.result()  # a cohort that cannot be written stops the benchmark: every cell needs it
            done += 1
            notify("cohort", futures[future].cohort_id, done, len(jobs))


def _with_epoch_progress(notify: EventHook, config: BenchmarkConfig) -> Callable[[Cell], Path]:
    """In-process training that reports every epoch (stage ``"epoch"``) to the progress hook."""
    from fusemed.benchmark.progress import EpochProgress
    from fusemed.training.config import DataConfig, TrainerConfig

    folds = int(config.train.get("folds", DataConfig.model_fields["folds"].default))
    epochs = int(config.train.get("epochs", TrainerConfig.model_fields["epochs"].default))

    def train(cell: Cell) -> Path:
        hook = EpochProgress(lambda done, total: notify("epoch", cell.name, done, total), folds, epochs)
        return train_cell(cell, callbacks=[hook])

    return train


def run_benchmark(config: BenchmarkConfig | str | Path, out: str | Path, *,
                  train_fn: Callable[[Cell], Path] | None = None,
                  simulate_fn: Callable[[CohortJob], Path] | None = None,
                  on_event: EventHook | None = None, report: bool = True, train: bool = True) -> BenchmarkResult:
    """Run (or resume) a benchmark grid into ``out``.

    Args:
        config: a :class:`BenchmarkConfig` or the path of its YAML file.
        out: output folder (cohorts, runs, results).
        train_fn: trains one cell into ``cell.run_dir`` (default: ``fusemed.training.train_run``).
        simulate_fn: writes one cohort (default: its ``fusemed.datasets`` loader or
            ``fusemed.simulate.simulate_cohort``).
        on_event: progress hook ``(stage, name, done, total)``.
        report: also write ``report.html`` over every completed cell.
        train: ``False`` only collects the cells already complete (results of an interrupted grid).
    """
    start = time.perf_counter()
    simulate_fn = simulate_fn or simulate_job
    if not isinstance(config, BenchmarkConfig):
        config = BenchmarkConfig.from_yaml(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if train or not (out / "benchmark.yaml").is_file():  # what produced these results; collecting changes nothing
        (out / "benchmark.yaml").write_text(config.model_dump_json(indent=2))
    jobs, cells = plan(config, out)
    notify = on_event or (lambda *_: None)

    if train:
        for hidden in (False, True):  # copies that hide modalities read the complete cohorts written first
            _simulate([j for j in jobs if (j.source is not None) is hidden], simulate_fn, config.n_jobs,
                      config.threads_per_job, notify)
        cells = [c for c in cells if applicable(c)]
    else:
        cells = [c for c in cells if c.complete]

    result = BenchmarkResult(out, out / "results.csv", out / "results.md", None)
    todo = []
    for cell in cells:
        if cell.complete:
            result.skipped.append(cell.name)
        else:
            todo.append(cell)
    if result.skipped:
        log.info("%d of %d cells already complete: skipped", len(result.skipped), len(cells))
    done = len(result.skipped)
    notify("cell", "skipped (complete)", done, len(cells))

    def tick(cell: Cell, error: str | None) -> None:
        nonlocal done
        done += 1
        if error is None:
            result.trained.append(cell.name)
            if cell.complete:  # a stub or a detector may write elsewhere: record only real runs
                provenance.record(cell.run_dir, n_jobs=config.n_jobs, threads=config.threads_per_job)
        else:
            result.failed[cell.name] = error
        notify("cell", cell.name, done, len(cells))

    if not train:
        todo = []
    if train_fn is None and on_event is not None and config.n_jobs == 1 and config.task == "prognosis":
        train_fn = _with_epoch_progress(notify, config)
    _run_cells(todo, train_fn or train_cell, config.n_jobs, config.threads_per_job, tick)
    complete = [c for c in cells if c.complete]
    result.seconds = time.perf_counter() - start
    result.report = write_results(config, jobs, complete, out, report=report, failed=result.failed)
    return result
