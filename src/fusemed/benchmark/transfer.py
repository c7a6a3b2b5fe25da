"""Results on new patients: each cell's predictions of the grid's new cohort (``RUN/transfer/``).

What the issue asks of ``predict`` on subjects no fold saw: marginal coverage of the conformal sets within
1 − α ± 0.03, every missing pattern with ≥ 100 subjects at ≥ 1 − α − 0.05, and calibration that does not
hurt (ECE of ``p`` ≤ ECE of ``p_uncal``). One row per cell in ``results_transfer.csv``; the markdown
section summarises each model over its seeds (mean ± sd [min, max]) and states each target as met or not.
"""

from __future__ import annotations

import json

import pandas as pd

from fusemed.benchmark.grid import Cell, transfer_folder
from fusemed.evaluation import uncertainty_metrics as um
from fusemed.report.runs import read_predictions
from fusemed.uncertainty.report import parse_sets

#: per-pattern coverage is judged where a pattern has at least this many new subjects
MIN_PATTERN_N = 100


def transfer_frame(cells: list[Cell]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(one row per cell, one row per cell × missing pattern)`` from ``RUN/transfer/``."""
    rows, patterns = [], []
    for cell, name in ((c, n) for c in cells for n in c.transfers):
        folder = cell.run_dir / transfer_folder(name)
        if not (folder / "predictions.csv").is_file():
            continue
        frame = read_predictions(folder / "predictions.csv").dropna(subset=["y_true"])
        metrics = json.loads((folder / "metrics.json").read_text())
        run_metrics = json.loads((cell.run_dir / "metrics.json").read_text())
        alpha = float(metrics.get("alpha") or run_metrics.get("alpha") or 0.1)
        y = frame["y_true"].to_numpy(int)
        row = {"cohort": cell.cohort_id, "new cohort": name, "model": cell.fusion, "uncertainty": cell.uncertainty,
               "seed": cell.seed, "n": len(frame), "alpha": alpha, "auroc": metrics.get("auroc"),
               "ece": um.ece(y, frame["p"].to_numpy(float)),
               "ece_uncal": um.ece(y, frame["p_uncal"].to_numpy(float)) if "p_uncal" in frame else None,
               "temperature": (run_metrics.get("uncertainty") or {}).get("temperature")}
        if "conformal_set" in frame:
            sets = parse_sets(frame["conformal_set"], 2)
            row.update(coverage=um.coverage(sets, y), set_size=um.mean_set_size(sets),
                       abstain=float((sets.sum(axis=1) != 1).mean()))
            for pattern, group in frame.groupby("pattern"):
                g_sets = parse_sets(group["conformal_set"], 2)
                patterns.append({"cohort": cell.cohort_id, "new cohort": name, "model": cell.fusion, "seed": cell.seed,
                                 "pattern": pattern, "n": len(group),
                                 "coverage": um.coverage(g_sets, group["y_true"].to_numpy(int))})
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(patterns)


def _spread(values: pd.Series, digits: int = 3) -> str:
    v = values.dropna().astype(float)
    if v.empty:
        return "–"
    sd = f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else ""
    return f"{v.mean():.{digits}f}{sd} [{v.min():.{digits}f}, {v.max():.{digits}f}]"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def transfer_markdown(rows: pd.DataFrame, patterns: pd.DataFrame) -> str:
    """The "new patients" section of ``results.md``: one table per new cohort (empty when there is none)."""
    if rows.empty:
        return ""
    alpha = float(rows["alpha"].iloc[0])
    target = 1 - alpha
    lines = ["", "## New patients (`predict` on new cohorts from the same generator)", "",
             "Each trained cell predicts every new cohort with all its fold models and the run's saved post-hoc "
             "steps (each new patient: the split-conformal set of the fold its id is assigned to; "
             f"target coverage {target:.2f} ± 0.03, every pattern with ≥ "
             f"{MIN_PATTERN_N} subjects ≥ {target - 0.05:.2f}; calibration must not raise ECE). *same-sites*: new "
             "patients scanned at the training cohort's sites (exchangeable: what cross-validation promises); "
             "*new-sites*: new scanner parameters too (a shift the guarantee does not cover). Values: mean ± sd "
             "[min, max] over seeds.", ""]
    for name, per_cohort in rows.groupby("new cohort", sort=False):
        lines += [f"### {name} ({int(per_cohort['n'].iloc[0])} subjects)", "",
                  "| model | seeds | AUROC | coverage | set size | abstain | ECE p | ECE p_uncal | "
                  f"worst pattern coverage (n ≥ {MIN_PATTERN_N}) | targets |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        mine_patterns = patterns[patterns["new cohort"] == name] if not patterns.empty else patterns
        for model, group in per_cohort.groupby("model", sort=False):
            mine = mine_patterns[(mine_patterns["model"] == model) & (mine_patterns["n"] >= MIN_PATTERN_N)] \
                if not mine_patterns.empty else pd.DataFrame()
            worst = mine.groupby("seed")["coverage"].min() if not mine.empty else pd.Series(dtype=float)
            cov_ok = bool(group["coverage"].sub(target).abs().le(0.03).all()) if "coverage" in group else False
            pat_ok = bool(worst.ge(target - 0.05).all()) if not worst.empty else None
            ece_ok = bool((group["ece"] <= group["ece_uncal"] + 1e-12).all()) \
                if group["ece_uncal"].notna().all() else None
            verdicts = [f"coverage {_verdict(cov_ok)}",
                        f"no pattern with n ≥ {MIN_PATTERN_N}" if pat_ok is None else f"patterns {_verdict(pat_ok)}",
                        "ECE: no p_uncal" if ece_ok is None else f"ECE {_verdict(ece_ok)}"]
            lines.append(f"| {model} | {len(group)} | {_spread(group['auroc'])} | {_spread(group['coverage'])} | "
                         f"{_spread(group['set_size'], 2)} | {_spread(group['abstain'], 2)} | "
                         f"{_spread(group['ece'])} | {_spread(group['ece_uncal'])} | {_spread(worst)} | "
                         f"{'; '.join(verdicts)} |")
        if not mine_patterns.empty:
            lines += ["", "Coverage per missing pattern (mean [min, max] over seeds):", "",
                      "| model | pattern | n (per seed) | coverage |", "|---|---|---|---|"]
            for (model, pattern), group in mine_patterns.groupby(["model", "pattern"], sort=False):
                lines.append(f"| {model} | {pattern} | {int(round(group['n'].mean()))} | "
                             f"{_spread(group['coverage'])} |")
        lines.append("")
    return "\n".join(lines)
