"""Where and how each cell ran, recorded when it ran, so a table regenerated later still names its machine.

``results.md`` must come out byte-for-byte the same whenever ``--collect-only`` rebuilds it from the
committed raw results: nothing in it may be read from the collecting machine or its clock. So the machine,
the parallelism and the day are written into each cell's run folder (``provenance.json``) by the invocation
that trained it, and the table's header summarises those records (plus the cells' own ``metrics.json``
wall times) instead of asking ``platform`` at collect time.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusemed.io import atomic_write_json

#: one file per run folder, written by the benchmark after the cell completed
PROVENANCE = "provenance.json"


def machine() -> str:
    """One line naming this machine (CPU, cores usable, Python and torch versions)."""
    import torch

    cpus = os.cpu_count()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = cpus
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (f"{platform.system()} {platform.machine()}, {platform.processor() or 'cpu'}, {affinity} usable of "
            f"{cpus} CPU cores{gpu}, Python {platform.python_version()}, torch {torch.__version__}")


def record(run_dir: Path, *, n_jobs: int, threads: int) -> Path:
    """Write ``run_dir/provenance.json``: this machine, the grid's parallelism and today's date (UTC)."""
    return atomic_write_json(run_dir / PROVENANCE, {
        "machine": machine(), "n_jobs": n_jobs, "threads_per_job": threads,
        "finished": _dt.datetime.now(_dt.timezone.utc).date().isoformat()})


def read(run_dir: Path) -> dict[str, Any] | None:
    """The cell's record, or None for a run trained outside the benchmark (or before records existed).

    Keys: ``machine``, ``n_jobs``, ``threads_per_job``, ``finished`` (a UTC date); a record written after
    the fact instead carries ``backfilled`` (where its machine line came from) and no ``finished``.
    """
    path = run_dir / PROVENANCE
    return json.loads(path.read_text()) if path.is_file() else None


def _seconds(run_dir: Path) -> float | None:
    path = run_dir / "metrics.json"
    value = json.loads(path.read_text()).get("seconds") if path.is_file() else None
    return float(value) if value is not None else None


def summary(run_dirs: Sequence[Path]) -> list[str]:
    """Markdown bullet lines: which machine(s) ran how many cells, on which days, and their summed wall time.

    Only the committed records are read, in a sorted order, so the lines are the same on any machine.
    """
    records = [read(d) for d in run_dirs]
    where = Counter((r["machine"], r["n_jobs"], r["threads_per_job"]) for r in records if r is not None)
    lines = [f"- ran on {m} (n_jobs={j}, {t} torch thread(s) per job): {n} cell(s)"
             for (m, j, t), n in sorted(where.items())]
    missing = sum(r is None for r in records)
    if missing:
        lines.append(f"- machine not recorded for {missing} cell(s) (trained before provenance.json existed)")
    backfilled = Counter(r["backfilled"] for r in records if r is not None and r.get("backfilled"))
    lines += [f"- machine of {n} cell(s) recorded after the fact: {b}" for b, n in sorted(backfilled.items())]
    days = sorted({r["finished"] for r in records if r is not None and r.get("finished")})
    if days:
        lines.append(f"- finished {days[0]}" + (f" … {days[-1]}" if len(days) > 1 else ""))
    seconds = [s for s in map(_seconds, run_dirs) if s is not None]
    if seconds:
        lines.append(f"- cell wall time (metrics.json `seconds`, the invocation that finished each run): "
                     f"{sum(seconds) / 3600:.2f} h summed over {len(seconds)} cell(s), "
                     f"median {statistics.median(seconds) / 60:.1f} min, max {max(seconds) / 60:.1f} min")
    return lines
