"""Per-run numbers the report recomputes from ``predictions.csv`` so every run is scored the same way.

Definitions (stated in the report too): ECE is top-label with 15 equal-width bins ((m-1)/M, m/M] (Guo et
al. 2017), empty bins skipped; Brier is the binary form in [0, 1]; the risk–coverage curve ranks subjects
by top-label confidence, descending, and AURC is the mean selective risk over coverages (ties kept as
one point by ranking stably); conformal coverage is the share of subjects whose set holds their label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fusemed.report.runs import parse_set

N_BINS = 15


def top_label(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence of the predicted class ``(n,)`` and whether it was right ``(n,)`` (binary, threshold 0.5)."""
    p = np.asarray(p, dtype=float)
    pred = (p >= 0.5).astype(int)
    return np.where(pred == 1, p, 1 - p), (pred == np.asarray(y, dtype=int)).astype(float)


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Top-label reliability bins: ``lo, hi, confidence, accuracy, n`` for each non-empty bin."""
    conf, correct = top_label(y, p)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)  # ((m-1)/M, m/M]
    rows = []
    for m in range(n_bins):
        sel = idx == m
        if sel.any():
            rows.append({"lo": edges[m], "hi": edges[m + 1], "confidence": conf[sel].mean(),
                         "accuracy": correct[sel].mean(), "n": int(sel.sum())})
    return pd.DataFrame(rows, columns=["lo", "hi", "confidence", "accuracy", "n"])


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label expected calibration error, 15 equal-width bins."""
    bins = reliability(y, p, n_bins)
    if bins.empty:
        return float("nan")
    return float((bins["n"] * (bins["accuracy"] - bins["confidence"]).abs()).sum() / bins["n"].sum())


def risk_coverage(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coverage ``(n,)``, selective risk ``(n,)`` when keeping the k most confident, and AURC."""
    conf, correct = top_label(y, p)
    order = np.argsort(-conf, kind="stable")
    errors = np.cumsum(1 - correct[order])
    k = np.arange(1, len(order) + 1)
    risk = errors / k
    return k / len(order), risk, float(risk.mean()) if len(risk) else float("nan")


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def set_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``covered`` (label in set) and ``set_size`` columns for rows with a parsable ``conformal_set``."""
    if "conformal_set" not in frame.columns:
        return pd.DataFrame(columns=["covered", "set_size", "pattern"])
    sets = frame["conformal_set"].map(parse_set)
    keep = sets.notna()
    out = pd.DataFrame(index=frame.index[keep])
    out["covered"] = [int(y) in s for y, s in zip(frame.loc[keep, "y_true"], sets[keep], strict=True)]
    out["set_size"] = [len(s) for s in sets[keep]]
    out["pattern"] = frame.loc[keep, "pattern"] if "pattern" in frame.columns else ""
    return out


def sens_at_spec(y: np.ndarray, p: np.ndarray, specificity: float) -> float:
    """Sensitivity for class 1 at the lowest threshold whose specificity is at least ``specificity``."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    neg, pos = p[y == 0], p[y == 1]
    if not len(neg) or not len(pos):
        return float("nan")
    thresholds = np.unique(np.concatenate([p, [np.inf]]))
    best = 0.0
    for t in thresholds:
        if (neg < t).mean() >= specificity:
            best = max(best, float((pos >= t).mean()))
    return best
