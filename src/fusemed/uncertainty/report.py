"""Uncertainty metrics of a run's out-of-fold predictions, overall and per missing-modality pattern.

Input is the predictions frame (`predictions.csv`: `y_true, p, conformal_set` and optionally `pattern`;
multiclass runs carry `p_0 … p_{C−1}`); output is the uncertainty part of `metrics.json`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fusemed.evaluation import uncertainty_metrics as um


def parse_sets(column: pd.Series, n_classes: int) -> np.ndarray:
    """`"{0,1}"`-style strings `(n,)` → bool sets `(n, C)`; empty / NaN cells are empty sets."""
    sets = np.zeros((len(column), n_classes), dtype=bool)
    for i, text in enumerate(column.fillna("{}").astype(str)):
        labels = [int(t) for t in text.strip("{} ").split(",") if t.strip()]
        sets[i, labels] = True
    return sets


def _probs(frame: pd.DataFrame) -> np.ndarray:
    cols = sorted((c for c in frame.columns if c.startswith("p_") and c[2:].isdigit()), key=lambda c: int(c[2:]))
    return frame[cols].to_numpy(float) if cols else frame["p"].to_numpy(float)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _metrics(frame: pd.DataFrame) -> dict[str, float | int | None]:
    y = frame["y_true"].to_numpy().astype(int)
    probs = _probs(frame)
    binary = probs.ndim == 1
    out: dict[str, float | int | None] = {"n": len(frame)}
    if len(frame) == 0:
        return out
    out.update(
        ece=um.ece(y, probs),
        adaptive_ece=um.adaptive_ece(y, probs),
        nll=um.nll(y, probs),
        aurc=um.aurc(y, probs),
        e_aurc=um.e_aurc(y, probs),
    )
    if binary:
        out["brier"] = um.brier(y, probs)
        out["sens_at_spec95"] = _finite(um.sens_at_spec(y, probs, 0.95))
        out["sens_at_spec100"] = _finite(um.sens_at_spec(y, probs, 1.0))
    if "conformal_set" in frame:
        sets = parse_sets(frame["conformal_set"], 2 if binary else probs.shape[1])
        out["coverage"] = um.coverage(sets, y)
        out["mean_set_size"] = um.mean_set_size(sets)
        out["abstain_rate"] = float((sets.sum(axis=1) != 1).mean())
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in out.items()}


def uncertainty_report(predictions: pd.DataFrame, alpha: float | None = None) -> dict:
    """Uncertainty metrics for `metrics.json`: overall keys plus `per_pattern: {pattern: {..., n}}`.

    Binary `sens_at_spec95/100` are for class 1, the poor outcome. Undefined values (one class only in a
    pattern) are None. `alpha` is stored with its target coverage 1 − α for the reader.
    """
    if "y_true" not in predictions:
        raise ValueError("predictions frame needs a 'y_true' column (and 'p', 'conformal_set')")
    frame = predictions.dropna(subset=["y_true"])
    report: dict = _metrics(frame)
    if alpha is not None:
        report["alpha"] = alpha
        report["target_coverage"] = 1.0 - alpha
    if "pattern" in frame:
        report["per_pattern"] = {
            str(pattern): _metrics(group) for pattern, group in frame.groupby("pattern", sort=True)
        }
    return report
