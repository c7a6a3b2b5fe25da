"""Whole-brain inference time per subject of each trained detector (issue 15: < 30 s at 2 mm on 2 cores).

For each detector's run of one seed in a finished `fusemed benchmark benchmarks/epilepsy.yaml` folder:
load the saved detector, then time `fusemed.diagnosis.detect.detect` (read the subject's volumes and
surface, register to MNI152, predict the map with its uncertainty, bring it back to the subject's grid,
cluster, calibrated confidences) on test subjects of its split, one at a time, with `--threads` torch
threads. The first subject is a warm-up and not counted.

Usage::

    PYTHONPATH=src python benchmarks/detect_speed.py --bench DIR [--seed 0] [--subjects 3] [--threads 2]
        [--out benchmarks/detect_speed.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/detect_speed.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from fusemed.diagnosis.api import load_detector
    from fusemed.diagnosis.data import cases_from_cohort
    from fusemed.diagnosis.detect import detect

    rows = []
    for run in sorted(args.bench.glob(f"runs/*/*-s{args.seed}")):
        if not (run / "metrics.json").is_file():  # not finished
            continue
        det, cal, cfg = load_detector(run)
        split = pd.read_csv(run / "split.csv", dtype={"subject": str})
        test = split.loc[split["split"] == "test", "subject"].tolist()[: args.subjects + 1]
        cases = [c for c in cases_from_cohort(Path(cfg.cohort), target=cfg.target, subjects=test) if det.covers(c)]
        seconds = []
        for i, case in enumerate(cases):
            start = time.perf_counter()
            detect(det, case, cal)
            if i:  # the first one warms caches (template, grid, mesh) up
                seconds.append(time.perf_counter() - start)
        rows.append((cfg.model, len(seconds), float(np.median(seconds)), float(np.max(seconds))))
        print(rows[-1], flush=True)
    lines = [
        "# Detection inference time per subject", "",
        f"Command: `PYTHONPATH=src python benchmarks/detect_speed.py --bench {args.bench} --seed {args.seed} "
        f"--subjects {args.subjects} --threads {args.threads}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{args.threads} torch thread(s), CPU only; one run, nothing else running on the "
        "machine (a run during the benchmark, its two jobs busy, read 2-8x longer: 30 s for volume-surface).  ",
        "What is timed: `fusemed.diagnosis.detect.detect` on one subject of the run's test split at a time "
        "(read, affine registration to MNI152, map + uncertainty at 2 mm, back to the subject's grid, clusters, "
        "calibrated confidences); the first subject warms caches up and is not counted. Target: < 30 s.", "",
        "| detector | subjects timed | median (s) | max (s) |", "|---|---:|---:|---:|",
        *[f"| {m} | {n} | {med:.1f} | {mx:.1f} |" for m, n, med, mx in rows], "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
