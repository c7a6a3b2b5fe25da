"""The comparison table: one row per run (+ the oracle), with CIs and paired tests against baselines.

Numbers are recomputed from each run's predictions (same definitions for every run); the AUROC's 95 %
CI is a percentile bootstrap over subjects; each run is compared with the early- and late-fusion runs
trained on the same cohort, on the subjects both scored (DeLong's test for correlated AUROCs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.evaluation.stats import bootstrap_auroc_ci, delong_test
from fusemed.report import metrics as M
from fusemed.report.oracle import ORACLE, oracle_columns
from fusemed.report.runs import BASELINES, RunData

log = logging.getLogger(__name__)

__all__ = ["ORACLE", "comparison_table", "fmt_value", "oracle_rows", "score_binary"]
#: ``c_index_method`` of a run whose metrics.json predates the key
UNRECORDED_C_INDEX = "pooled raw out-of-fold risks (older run)"


def fmt_value(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, missing (None/NaN) as an en dash."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def score_binary(y: np.ndarray, p: np.ndarray, frame: pd.DataFrame | None = None, *, n_boot: int = 2000,
                 seed: int = 0) -> dict[str, Any]:
    """AUROC with CI, AUPRC, Brier, ECE, AURC, sensitivity at 95 % specificity, conformal coverage/size."""
    from sklearn.metrics import average_precision_score

    ci = bootstrap_auroc_ci(y, p, n_boot=n_boot, seed=seed)
    both = len(np.unique(y)) == 2
    row: dict[str, Any] = {
        "n": int(len(y)),
        "auroc": _none(ci.estimate), "auroc_low": _none(ci.low), "auroc_high": _none(ci.high),
        "auprc": float(average_precision_score(y, p)) if both else None,
        "brier": M.brier(y, p),
        "ece": _none(M.ece(y, p)),
        "aurc": _none(M.risk_coverage(y, p)[2]),
        "sens_at_spec95": _none(M.sens_at_spec(y, p, 0.95)),
        "coverage": None, "mean_set_size": None,
    }
    if frame is not None:
        sets = M.set_columns(frame)
        if len(sets):
            row["coverage"] = float(sets["covered"].mean())
            row["mean_set_size"] = float(sets["set_size"].mean())
    return row


def chosen_label(run: RunData) -> str:
    """``auto → logistic ×4, late ×1`` for a self-configured run (what each outer fold chose), else the fusion."""
    chosen = (run.metrics.get("configuration") or {}).get("chosen")
    if not chosen:
        return run.fusion
    return f"{run.fusion} → " + ", ".join(f"{name} ×{n}" for name, n in sorted(chosen.items(), key=lambda x: -x[1]))


def run_row(run: RunData, *, n_boot: int = 2000) -> dict[str, Any]:
    """One table row; non-binary runs carry what their ``metrics.json`` says (C-index, sensitivity...)."""
    row: dict[str, Any] = {"run": run.name, "fusion": chosen_label(run), "uncertainty": run.uncertainty,
                           "kind": run.task_kind, "missing_rate": run.missing_rate()}
    if run.binary:
        frame = run.labelled()
        row.update(score_binary(frame["y_true"].to_numpy(), frame["p"].to_numpy(), frame, n_boot=n_boot))
        if "p_uncal" in frame.columns:
            row["ece_uncal"] = _none(M.ece(frame["y_true"].to_numpy(), frame["p_uncal"].to_numpy()))
    else:
        for key in ("n", "auroc", "auprc", "brier", "ece", "coverage", "mean_set_size", "c_index", "c_index_sd",
                    "sensitivity", "specificity", "ppv", "dice"):
            value = run.metrics.get(key)
            if isinstance(value, (int, float)):
                row[key] = value
        if "c_index" in row:  # older runs did not record it: they pooled raw out-of-fold risks
            row["c_index_method"] = run.metrics.get("c_index_method", UNRECORDED_C_INDEX)
    return row


def oracle_rows(runs: list[RunData], oracle: pd.DataFrame, *, n_boot: int = 2000) -> list[dict[str, Any]]:
    """Each oracle of the truth (full information; observed data where written) scored on the subjects the
    runs predicted: what no model can beat, and what a model could reach given the modalities present."""
    binary = [r.labelled()[["subject", "y_true"]] for r in runs if r.binary]
    if not binary:  # e.g. a survival target: the oracle's outcome probability does not score it
        return []
    labels = pd.concat(binary, ignore_index=True)
    if labels.empty:
        return []
    labels = labels.drop_duplicates("subject")
    rows = []
    for column, name in oracle_columns(oracle).items():
        merged = labels.merge(oracle[["subject", column]], on="subject", how="inner").dropna(subset=[column])
        if merged["y_true"].nunique() < 2:
            continue
        row = {"run": name, "fusion": "truth", "uncertainty": "-", "kind": "binary", "missing_rate": None}
        row.update(score_binary(merged["y_true"].to_numpy(), merged[column].to_numpy(), n_boot=n_boot))
        rows.append(row)
    return rows


def _baseline_for(run: RunData, runs: list[RunData], fusion: str) -> RunData | None:
    """The baseline run on the same cohort sharing the most subjects with ``run``."""
    candidates = [r for r in runs if r.fusion == fusion and r is not run and r.binary
                  and (run.cohort is None or r.cohort is None or r.cohort == run.cohort)]
    if not candidates:
        return None
    mine = set(run.labelled()["subject"])
    return max(candidates, key=lambda r: len(mine & set(r.labelled()["subject"])))


def paired_tests(runs: list[RunData]) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(run name, baseline fusion): {difference, low, high, p_value, n, baseline}}`` (DeLong)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        if not run.binary:
            continue
        for fusion in BASELINES:
            if run.fusion == fusion:
                continue
            base = _baseline_for(run, runs, fusion)
            if base is None:
                continue
            a = run.labelled()[["subject", "y_true", "p"]]
            b = base.labelled()[["subject", "p"]]
            both = a.merge(b, on="subject", suffixes=("", "_base"))
            if len(both) < 10 or both["y_true"].nunique() < 2:
                continue
            test = delong_test(both["y_true"].to_numpy(), both["p"].to_numpy(), both["p_base"].to_numpy())
            out[(run.name, fusion)] = {"difference": test.difference, "low": test.low, "high": test.high,
                                       "p_value": test.p_value, "n": test.n, "baseline": base.name}
    return out


def comparison_table(runs: list[RunData], oracle: pd.DataFrame | dict[Path, pd.DataFrame] | None = None, *,
                     n_boot: int = 2000) -> pd.DataFrame:
    """One row per run (+ ``ORACLE``): metrics, AUROC CI, ``vs_early_*`` / ``vs_late_*`` paired tests.

    ``oracle`` is one truth table for all runs, or one per cohort folder (runs grouped by their config's
    ``cohort``; rows named ``ORACLE (full information) [<cohort>]`` when there are several).
    """
    rows = [run_row(r, n_boot=n_boot) for r in runs]
    tests = paired_tests(runs)
    for row in rows:
        for fusion in BASELINES:
            t = tests.get((row["run"], fusion))
            if t is not None:
                row[f"vs_{fusion}_diff"] = t["difference"]
                row[f"vs_{fusion}_low"] = t["low"]
                row[f"vs_{fusion}_high"] = t["high"]
                row[f"vs_{fusion}_p"] = t["p_value"]
    if isinstance(oracle, pd.DataFrame):
        oracle = {None: oracle}
    for cohort, truth in (oracle or {}).items():
        mine = runs if cohort is None else [r for r in runs if r.cohort == cohort]
        for extra in oracle_rows(mine, truth, n_boot=n_boot):
            if len(oracle) > 1:
                extra["run"] = f"{extra['run']} [{Path(cohort).name}]"
            rows.append(extra)
    return pd.DataFrame(rows)
