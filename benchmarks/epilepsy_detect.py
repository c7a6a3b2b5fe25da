"""Benchmark the lesion detectors on one simulated epilepsy cohort: metrics, training and inference cost.

Each detector runs in its own child process (so peak memory is its own), with 2 torch threads:
train_detector (fit + calibration), whole-brain inference of test subjects at the cohort's 2 mm,
evaluate_detector on the held-out test split (same split for every detector: same seed).

    python benchmarks/epilepsy_detect.py --simulate 100 --seed 7 --cohort /tmp/epi100 --out /tmp/epi-runs \
        --md benchmarks/epilepsy_detect.md

`--rows a,b` runs a subset (labels or row numbers); `--collect` assembles the table from finished rows
(`OUT/<row>.json`).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

# the nets are EVALUATED with one pass and no window overlap (time); their inference TIME is measured
# with the defaults (3 MC-dropout passes, overlap 0.25), see run_one
FAST_EVAL = {"mc_samples": 1, "overlap": 0.0}
ROWS: list[dict] = [
    {"label": "siamese-ocsvm T1+FLAIR (prototype)", "model": "siamese-ocsvm", "modalities": ["t1", "flair"],
     "params": {"epochs": 8}},
    {"label": "siamese-ocsvm T1+FLAIR+PET", "model": "siamese-ocsvm", "modalities": ["t1", "flair", "pet"],
     "params": {"epochs": 8}},
    {"label": "zscore T1+FLAIR+PET", "model": "zscore", "modalities": ["t1", "flair", "pet"], "params": {}},
    {"label": "ae T1+FLAIR+PET", "model": "ae", "modalities": ["t1", "flair", "pet"], "params": {}},
    {"label": "zscore T1", "model": "zscore", "modalities": ["t1"], "params": {}},
    {"label": "zscore FLAIR", "model": "zscore", "modalities": ["flair"], "params": {}},
    {"label": "zscore PET", "model": "zscore", "modalities": ["pet"], "params": {}},
    {"label": "unet T1+FLAIR+PET", "model": "unet", "modalities": ["t1", "flair", "pet"],
     "params": FAST_EVAL},
    {"label": "unet T1", "model": "unet", "modalities": ["t1"], "params": FAST_EVAL},
    {"label": "hemis-unet T1+FLAIR+PET", "model": "hemis-unet", "modalities": ["t1", "flair", "pet"],
     "params": FAST_EVAL},
    {"label": "surface-gnn cortex", "model": "surface-gnn", "modalities": ["cortex"],
     "params": {"epochs": 15, "mc_samples": 4}},
]
METRICS = ["sensitivity", "sensitivity_margin20", "specificity", "fp_per_patient", "top1", "top5", "ppv",
           "dice", "cluster_ece"]


def _run_dir(out: Path, row: dict) -> Path:
    return out / row["label"].split(" (")[0].replace(" ", "_").replace("+", "-")


def _result(out: Path, row: dict) -> Path:
    """Where a finished row's timings and metrics are kept (keyed by label, not position)."""
    return out / f"{_run_dir(out, row).name}.json"


def run_one(row: dict, cohort: Path, out: Path, seed: int, test_fraction: float, n_timed: int) -> dict:
    import torch

    from fusemed.diagnosis import cases_from_cohort, detect, evaluate_detector, load_run, train_detector

    torch.set_num_threads(2)
    run = _run_dir(out, row)
    t = time.perf_counter()
    train_detector(cohort, row["model"], run, modalities=row["modalities"], seed=seed,
                   test_fraction=test_fraction, params=row["params"])
    train_s = time.perf_counter() - t
    det, cal, _ = load_run(run)
    import pandas as pd

    split = pd.read_csv(run / "split.csv", dtype={"subject": str})
    test = split.loc[split["split"] == "test", "subject"].tolist()[:n_timed]
    cases = cases_from_cohort(cohort, subjects=test)
    defaults = type(det).defaults
    det.params.update({k: defaults[k] for k in FAST_EVAL if k in defaults})  # time the default inference
    times = []
    for case in cases:
        t = time.perf_counter()
        detect(det, case, cal)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    metrics = evaluate_detector(run, cohort)
    eval_s = time.perf_counter() - t
    return {**row, "train_s": train_s, "infer_s": sum(times) / len(times), "eval_s": eval_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "metrics": metrics}


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def markdown(results: list[dict], header: str) -> str:
    lines = [header, "", "## Cost (2 torch threads; train = fit + calibration)", "",
             "| detector | train s | inference s / subject | peak RSS MB |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['label']} | {r['train_s']:.0f} | {r['infer_s']:.1f} | {r['peak_rss_mb']:.0f} |")
    for key, point in (("metrics", "calibrated operating point (thr: the map threshold each run set)"),
                       ("relaxed", "relaxed threshold (see --relax)")):
        for split in (None, "mri_negative", "mri_visible"):
            title = {None: "all patients", "mri_negative": "MRI-negative patients",
                     "mri_visible": "MRI-visible patients"}[split]
            rows = [r for r in results if key in r]
            if not rows:
                continue
            lines += ["", f"## Test split, {point}: {title} (+ all test controls)", "",
                      "| detector | thr | n pat | " + " | ".join(METRICS) + " |",
                      "|---" * (len(METRICS) + 3) + "|"]
            for r in rows:
                m = r[key] if split is None else r[key][split]
                thr = r[key].get("threshold", 0.5)
                lines.append(f"| {r['label']} | {_fmt(thr)} | {m['n_patients']} | "
                             + " | ".join(_fmt(m[k]) for k in METRICS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cohort", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--simulate", type=int, default=0, help="simulate this many subjects into --cohort first")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--patient-fraction", type=float, default=0.4)
    ap.add_argument("--test-fraction", type=float, default=0.4)
    ap.add_argument("--rows", default="", help="comma-separated labels (default: all)")
    ap.add_argument("--timed", type=int, default=2, help="test subjects timed for inference")
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--collect", action="store_true", help="only assemble --md from the row*.json in --out")
    ap.add_argument("--relax", type=float, default=None,
                    help="re-evaluate finished rows at this lower map threshold (another operating point)")
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:
        row = next(r for r in ROWS if r["label"] == args.one)
        if args.relax is not None:
            from fusemed.diagnosis import evaluate_detector

            res = json.loads(_result(args.out, row).read_text())
            res["relaxed"] = evaluate_detector(_run_dir(args.out, row), args.cohort, threshold=args.relax)
        else:
            res = run_one(row, args.cohort, args.out, args.seed, args.test_fraction, args.timed)
        _result(args.out, row).write_text(json.dumps(res, indent=2))
        return
    if args.simulate:
        from fusemed.simulate import simulate_cohort

        t = time.perf_counter()
        simulate_cohort("epilepsy", args.cohort, n_subjects=args.simulate, seed=args.seed,
                        patient_fraction=args.patient_fraction)
        logging.warning("simulated %d subjects in %.0f s", args.simulate, time.perf_counter() - t)
    wanted = [s.strip() for s in args.rows.split(",") if s.strip()]
    results = []
    for i, row in enumerate(ROWS):
        if args.collect:
            if _result(args.out, row).exists():
                results.append(json.loads(_result(args.out, row).read_text()))
            continue
        if wanted and row["label"] not in wanted and str(i) not in wanted:
            continue
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--cohort", str(args.cohort), "--out", str(args.out), "--seed",
               str(args.seed), "--test-fraction", str(args.test_fraction), "--timed", str(args.timed),
               "--one", row["label"]]
        if args.relax is not None:
            if not _result(args.out, row).exists():
                continue
            cmd += ["--relax", str(args.relax)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            logging.warning("%s failed:\n%s", row["label"], proc.stderr[-3000:])
            continue
        res = json.loads(_result(args.out, row).read_text())
        results.append(res)
        logging.warning("%s done in %.0f s: sensitivity %s", row["label"], time.perf_counter() - t,
                        res["metrics"]["sensitivity"])
    if args.md:
        header = (f"# Epilepsy lesion detection benchmark\n\nCohort: `{args.cohort}` "
                  f"(simulated epilepsy, seed {args.seed}); split: {args.test_fraction:.0%} test, "
                  "25 % of the rest for cluster-confidence calibration (same split for every detector).")
        args.md.write_text(markdown(results, header))


if __name__ == "__main__":
    main()
