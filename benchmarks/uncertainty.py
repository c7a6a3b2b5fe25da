"""Uncertainty benchmark (issue 5): conformal coverage per missing-modality pattern, calibration before/after.

On a simulated coma cohort with MNAR missingness, for each fusion strategy:
1. `train_run` with `--uncertainty mc_dropout --calibrate --alpha 0.1` (5 folds, pattern-conditional sets,
   each fold's own calibration split): the numbers the pipeline writes into `metrics.json`.
2. The folds' raw MC-dropout logits of their test subjects (out-of-fold, uncalibrated, member-averaged) are
   split R times at random into a calibration and a test half: on each split temperature scaling is fitted
   on the calibration half (ECE / NLL before and after on the test half), and marginal vs
   pattern-conditional LAC conformal sets are calibrated and evaluated per pattern. Averaging over R
   splits gives the expected coverage, as in Zaffran et al. (ICML 2023).

    PYTHONPATH=src python benchmarks/uncertainty.py --out /tmp/unc-bench      # ~15 min on 2 CPU cores
Writes `results.json` in --out; `benchmarks/uncertainty.md` reports one such run.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fusemed.evaluation import uncertainty_metrics as um
from fusemed.training import TrainConfig, train_run
from fusemed.training.runner import load_fold_outputs
from fusemed.uncertainty import ConformalClassifier, TemperatureScaler, logits_to_probs

log = logging.getLogger("benchmarks.uncertainty")


def simulate(folder: Path, n: int, seed: int) -> Path:
    from fusemed.simulate import simulate_cohort

    if not (folder / "cohort.yaml").is_file():
        simulate_cohort("coma", folder, n_subjects=n, seed=seed, spacing=6.0, missing=0.35, missing_scheme="mnar")
    return folder


def train(cohort: Path, fusion: str, out: Path, args: argparse.Namespace) -> Path:
    config = TrainConfig(
        cohort=cohort,
        target="outcome",
        fusion=fusion,
        modalities=args.modalities,
        folds=5,
        epochs=args.epochs,
        batch_size=16,
        lr=3e-3,
        spacing=6.0,
        seed=0,
        progress=False,
        uncertainty="mc_dropout",
        calibrate=True,
        alpha=args.alpha,
        calibration_fraction=0.25,
        conformal_groupby="pattern",
    )
    return train_run(config, out / f"run-{fusion}")


def oof_logits(run: Path) -> pd.DataFrame:
    """Out-of-fold test subjects of every fold: the logit of the MC-dropout mean probability, y, pattern."""
    rows = []
    for fold_dir in sorted(d for d in run.glob("fold-*") if (d / "outputs.npz").is_file()):
        test = load_fold_outputs(fold_dir, int(fold_dir.name.split("-")[1]), "binary").test
        p1 = logits_to_probs(test.logits).mean(axis=0)  # (K, n, 1) -> (n,)
        p1 = np.clip(p1, 1e-6, 1 - 1e-6)
        rows.append(
            pd.DataFrame(
                {"subject": test.subjects, "logit": np.log(p1 / (1 - p1)), "y": test.y, "pattern": test.patterns}
            )
        )
    return pd.concat(rows, ignore_index=True)


def split_study(frame: pd.DataFrame, alpha: float, repeats: int, seed: int) -> dict:
    """R random 50/50 calibration/test splits: calibration and conformal metrics, averaged."""
    rng = np.random.default_rng(seed)
    z, y, g = frame["logit"].to_numpy(), frame["y"].to_numpy().astype(int), frame["pattern"].to_numpy()
    calib = {
        k: []
        for k in ("ece_before", "ece_after", "nll_before", "nll_after", "brier_before", "brier_after", "temperature")
    }
    per_pattern: dict[str, dict[str, list[float]]] = {}
    overall: dict[str, list[float]] = {}
    fallbacks: dict[str, int] = {}
    for _ in range(repeats):
        idx = rng.permutation(len(frame))
        cal, test = idx[: len(idx) // 2], idx[len(idx) // 2 :]
        scaler = TemperatureScaler().fit(z[cal], y[cal])
        before, after = logits_to_probs(z[test]), scaler.predict_proba(z[test])
        calib["temperature"].append(scaler.temperature_)
        for name, fn in (("ece", um.ece), ("nll", um.nll), ("brier", um.brier)):
            calib[f"{name}_before"].append(fn(y[test], before))
            calib[f"{name}_after"].append(fn(y[test], after))
        p_cal = scaler.predict_proba(z[cal])
        for groupby in ("none", "pattern"):
            cp = ConformalClassifier(alpha, score="lac", groupby=groupby).fit(p_cal, y[cal], g[cal])
            sets = cp.predict(after, g[test])
            overall.setdefault(f"coverage_{groupby}", []).append(um.coverage(sets, y[test]))
            overall.setdefault(f"set_size_{groupby}", []).append(um.mean_set_size(sets))
            for pattern in np.unique(g[test]):
                m = g[test] == pattern
                entry = per_pattern.setdefault(pattern, {})
                entry.setdefault(f"coverage_{groupby}", []).append(um.coverage(sets[m], y[test][m]))
                entry.setdefault(f"set_size_{groupby}", []).append(um.mean_set_size(sets[m]))
            if groupby == "pattern":
                for pattern in cp.fallbacks_:
                    fallbacks[pattern] = fallbacks.get(pattern, 0) + 1
    counts = frame["pattern"].value_counts()
    return {
        "calibration": {k: float(np.mean(v)) for k, v in calib.items()},
        "overall": {k: float(np.mean(v)) for k, v in overall.items()},
        "per_pattern": {
            p: {
                "n": int(counts[p]),
                "fallback_share": fallbacks.get(p, 0) / repeats,
                **{k: float(np.mean(v)) for k, v in entry.items()},
            }
            for p, entry in sorted(per_pattern.items(), key=lambda kv: -counts[kv[0]])
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmark-uncertainty"))
    parser.add_argument("--fusions", default="late,concat")
    parser.add_argument("--modalities", default="pet,connectome,clinical")
    parser.add_argument("--n-subjects", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    cohort = simulate(args.out / "coma", args.n_subjects, args.seed)
    results: dict = {
        "cohort": {
            "n_subjects": args.n_subjects,
            "missing": 0.35,
            "missing_scheme": "mnar",
            "spacing_mm": 6.0,
            "modalities": args.modalities,
        },
        "alpha": args.alpha,
        "repeats": args.repeats,
        "fusions": {},
    }
    for fusion in args.fusions.split(","):
        start = time.time()
        run = train(cohort, fusion, args.out, args)
        metrics = json.loads((run / "metrics.json").read_text())
        keep = (
            "auroc",
            "ece",
            "adaptive_ece",
            "brier",
            "nll",
            "aurc",
            "sens_at_spec95",
            "sens_at_spec100",
            "coverage",
            "mean_set_size",
            "abstain_rate",
            "n",
        )
        results["fusions"][fusion] = {
            "train_seconds": round(time.time() - start, 1),
            "pipeline": {k: metrics.get(k) for k in keep},
            "pipeline_per_pattern": {
                p: {k: m.get(k) for k in ("n", "auroc", "coverage", "mean_set_size")}
                for p, m in metrics.get("per_pattern", {}).items()
            },
            "pipeline_fallbacks": {
                fold: {g: t["fallback"] for g, t in info["groups"].items() if t["fallback"]}
                for fold, info in metrics["uncertainty"]["folds"].items()
            },
            "epistemic_per_pattern": epistemic_per_pattern(run),
            "splits": split_study(oof_logits(run), args.alpha, args.repeats, args.seed),
        }
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(render_markdown(results))
    print(render_markdown(results))  # noqa: T201 - a benchmark script reports on stdout


def epistemic_per_pattern(run: Path) -> dict[str, dict[str, float]]:
    """Mean MC-dropout epistemic / aleatoric uncertainty (nats) per pattern, from predictions.csv."""
    frame = pd.read_csv(run / "predictions.csv")
    grouped = frame.groupby("pattern")[["epistemic", "aleatoric"]].mean()
    return {p: {k: float(v) for k, v in row.items()} for p, row in grouped.iterrows()}


def render_markdown(results: dict) -> str:
    """The tables of benchmarks/uncertainty.md."""
    lines = []
    for fusion, r in results["fusions"].items():
        s = r["splits"]
        c = s["calibration"]
        lines += [
            f"### {fusion} fusion (training {r['train_seconds']:.0f} s)",
            "",
            f"Pipeline (out-of-fold, per-fold calibration split, pattern-conditional sets): AUROC "
            f"{r['pipeline']['auroc']:.3f}, ECE {r['pipeline']['ece']:.3f}, coverage {r['pipeline']['coverage']:.3f}, "
            f"mean set size {r['pipeline']['mean_set_size']:.2f}.",
            "",
            f"Calibration ({results['repeats']} random 50/50 splits of the out-of-fold predictions): ECE "
            f"{c['ece_before']:.3f} → {c['ece_after']:.3f}, NLL {c['nll_before']:.3f} → {c['nll_after']:.3f}, "
            f"Brier {c['brier_before']:.3f} → {c['brier_after']:.3f} (mean T = {c['temperature']:.2f}).",
            "",
            "| pattern | n | coverage marginal | coverage per pattern | set size marginal | set size per pattern "
            "| fallback share | epistemic (nats) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        o = s["overall"]
        lines.append(
            f"| all | {sum(e['n'] for e in s['per_pattern'].values())} | {o['coverage_none']:.3f} | "
            f"{o['coverage_pattern']:.3f} | {o['set_size_none']:.2f} | {o['set_size_pattern']:.2f} | | |"
        )
        for pattern, e in s["per_pattern"].items():
            epi = r.get("epistemic_per_pattern", {}).get(pattern, {}).get("epistemic", float("nan"))
            lines.append(
                f"| {pattern} | {e['n']} | {e['coverage_none']:.3f} | {e['coverage_pattern']:.3f} | "
                f"{e['set_size_none']:.2f} | {e['set_size_pattern']:.2f} | {e['fallback_share']:.2f} | {epi:.4f} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
