"""Simulator speed: subjects per minute and peak memory, one fresh process per setting.

    PYTHONPATH=src python benchmarks/simulate_speed.py                 # writes benchmarks/simulate_speed.md
    PYTHONPATH=src python benchmarks/simulate_speed.py --subjects 20   # quicker

Each setting runs in its own process so that peak RSS and the start-up cost (imports, loading the
nilearn templates) are those a user of `fusemed simulate` pays.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(scenario: str, subjects: int, spacing: float) -> dict:
    start = time.perf_counter()
    from fusemed.simulate import simulate_cohort
    from fusemed.simulate.anatomy import load_anatomy

    load_anatomy()
    import fusemed.cohort  # noqa: F401  (the writer needs it; count its import in start-up)

    ready = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        simulate_cohort(scenario, Path(tmp) / "c", n_subjects=subjects, seed=0, spacing=spacing)
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    end = time.perf_counter()
    return {
        "scenario": scenario,
        "spacing_mm": spacing,
        "subjects": subjects,
        "startup_s": round(ready - start, 1),
        "simulate_s": round(end - ready, 1),
        "total_s": round(end - start, 1),
        "subjects_per_min": round(subjects / (end - ready) * 60, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "disk_mb": round(size / 1e6, 1),
    }


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), "?")
    except OSError:
        model = "?"
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{model}, nproc={nproc}, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--subjects-2mm", type=int, default=30)
    ap.add_argument("--one", nargs=3, metavar=("SCENARIO", "SUBJECTS", "SPACING"))
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("simulate_speed.md"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), float(args.one[2]))))
        return
    settings = [("coma", args.subjects, 3.0), ("coma", args.subjects_2mm, 2.0), ("epilepsy", args.subjects_2mm, 2.0)]
    rows = []
    for scenario, n, spacing in settings:
        cmd = [sys.executable, __file__, "--one", scenario, str(n), str(spacing)]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
        print(rows[-1], flush=True)
    cols = list(rows[0])
    lines = [
        "# Simulator speed",
        "",
        f"Machine: {machine()}. Shared with other agents while measured, so times are upper bounds.",
        f"Command: `PYTHONPATH=src python benchmarks/simulate_speed.py --subjects {args.subjects}"
        f" --subjects-2mm {args.subjects_2mm}` (seed 0, 3 sites, no missingness; one fresh process per row;",
        "`startup_s` = imports + loading the nilearn templates, paid once per run).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows),
        "",
    ]
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
