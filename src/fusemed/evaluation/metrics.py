"""Discrimination metrics, overall and per missing-modality pattern, from a ``predictions.csv`` frame.

Binary: ``auroc``, ``auprc`` (average precision), ``balanced_accuracy`` (threshold 0.5), ``brier``
(binary form, mean of (p - y)^2 in [0, 1]). Multiclass: one-vs-rest macro AUROC, balanced accuracy,
multiclass Brier (sum over classes, in [0, 2]). Survival: Harrell's C-index (torchsurv); out-of-fold
predictions (a ``fold`` column) are scored per fold, see :func:`fold_c_index`.
A metric that is undefined on a group (e.g. AUROC with one class present) is ``None``.
Robustness: metric(pattern) / metric(all modalities present), mean and worst case over the patterns.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """``y`` ``(n,)`` in {0, 1}, ``p`` ``(n,)`` probability of class 1."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    with warnings.catch_warnings():  # a one-class pattern group: balanced accuracy = that class's recall
        warnings.simplefilter("ignore", UserWarning)
        return _binary(y, p, both, threshold)


def _binary(y: np.ndarray, p: np.ndarray, both: bool, threshold: float) -> dict[str, Any]:
    return {
        "auroc": float(roc_auc_score(y, p)) if both else None,
        "auprc": float(average_precision_score(y, p)) if both else None,
        "balanced_accuracy": float(balanced_accuracy_score(y, (p >= threshold).astype(int))) if len(y) else None,
        "brier": float(np.mean((p - y) ** 2)) if len(y) else None,
        "n": int(len(y)),
    }


def multiclass_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """``y`` ``(n,)`` labels, ``proba`` ``(n, C)``."""
    y, proba = np.asarray(y, dtype=int), np.asarray(proba, dtype=float)
    n_classes = proba.shape[1]
    onehot = np.eye(n_classes)[y]
    try:
        auroc = float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(n_classes))))
    except ValueError:
        auroc = None
    return {
        "auroc": auroc,
        "auprc": float(average_precision_score(onehot, proba, average="macro")) if len(np.unique(y)) > 1 else None,
        "balanced_accuracy": float(balanced_accuracy_score(y, proba.argmax(1))) if len(y) else None,
        "brier": float(np.mean(((proba - onehot) ** 2).sum(1))) if len(y) else None,
        "n": int(len(y)),
    }


def survival_metrics(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> dict[str, Any]:
    """Harrell's C-index of a risk score (higher = earlier event), via torchsurv."""
    import torch
    from torchsurv.metrics.cindex import ConcordanceIndex

    event = np.asarray(event, dtype=bool)
    if len(time) < 2 or not event.any():
        return {"c_index": None, "n": int(len(time))}
    cindex = ConcordanceIndex()
    value = cindex(torch.tensor(np.asarray(risk, dtype=np.float32)), torch.tensor(event),
                   torch.tensor(np.asarray(time, dtype=np.float32)))
    value = float(value)
    return {"c_index": value if math.isfinite(value) else None, "n": int(len(time))}


#: ``c_index_method`` in ``metrics.json``: how a survival C-index was computed
PER_FOLD_MEAN = "per-fold mean"
POOLED_CENTRED = "pooled after per-fold centring"
PLAIN = "plain (one set of predictions, no folds)"


def centre_per_fold(risk: np.ndarray, folds: np.ndarray | None) -> np.ndarray:
    """Log-risks ``(n,)`` minus their fold's median (``folds`` ``(n,)``; None: returned unchanged).

    A Cox loss sees only differences of log-risks, so each fold's model carries its own arbitrary offset
    (its bias stays near its random initial value); subtracting each fold's median puts the folds' risks on
    one location before they are compared across folds. It does not equalise their scales.
    """
    risk = np.asarray(risk, dtype=float)
    if folds is None:
        return risk
    folds = np.asarray(folds)
    centred = risk.copy()
    for fold in np.unique(folds):
        mine = folds == fold
        centred[mine] -= np.median(risk[mine])
    return centred


def fold_c_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray,
                 folds: np.ndarray | None) -> dict[str, Any]:
    """Harrell's C of out-of-fold risks: each fold's own, their mean and spread, and a pooled value.

    Harrell's C depends only on the order of risks among comparable pairs, so centring changes nothing
    within one fold; it matters only when pairs cross folds, whose models have different offsets (pooling
    raw out-of-fold risks counts offset differences as predictions, typically pulling C toward 0.5). The
    headline ``c_index`` is therefore the mean of the per-fold values (``c_index_method: "per-fold mean"``);
    ``c_index_pooled`` pools every subject after :func:`centre_per_fold`. Without folds (or one fold), e.g.
    a run's ensemble applied to a new cohort, it is the plain C-index (``c_index_method`` says so).

    Args:
        time, event, risk: ``(n,)`` each; ``risk`` is a log-risk (higher = earlier event).
        folds: ``(n,)`` outer fold of each subject, or None.

    Returns:
        ``c_index``, ``c_index_method``, ``n``; with folds also ``c_index_sd`` (ddof 1), ``c_index_min``,
        ``c_index_max``, ``c_index_per_fold`` (``{fold: value or None}``) and ``c_index_pooled``.
    """
    time, event, risk = np.asarray(time, dtype=float), np.asarray(event), np.asarray(risk, dtype=float)
    if folds is None or len(np.unique(folds)) < 2:
        return {**survival_metrics(time, event, risk), "c_index_method": PLAIN}
    folds = np.asarray(folds)
    per_fold = {_fold_key(f): survival_metrics(time[folds == f], event[folds == f], risk[folds == f])["c_index"]
                for f in np.unique(folds)}
    values = [v for v in per_fold.values() if v is not None]
    pooled = survival_metrics(time, event, centre_per_fold(risk, folds))["c_index"]
    return {
        "c_index": float(np.mean(values)) if values else None, "c_index_method": PER_FOLD_MEAN,
        "c_index_sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "c_index_min": min(values) if values else None, "c_index_max": max(values) if values else None,
        "c_index_per_fold": per_fold, "c_index_pooled": pooled, "n": int(len(time)),
    }


def _fold_key(fold: Any) -> str:
    """A fold id as a JSON key: ``0``, not ``0.0`` (a CSV column with gaps reads as float)."""
    return str(int(fold)) if isinstance(fold, (int, float, np.integer, np.floating)) and float(fold).is_integer() \
        else str(fold)


def _folds(frame: pd.DataFrame) -> np.ndarray | None:
    return frame["fold"].to_numpy() if "fold" in frame.columns and frame["fold"].notna().all() else None


def _metrics(frame: pd.DataFrame, task_kind: str) -> dict[str, Any]:
    if task_kind == "multiclass":
        cols = sorted((c for c in frame.columns if c.startswith("p_") and c[2:].isdigit()), key=lambda c: int(c[2:]))
        return multiclass_metrics(frame["y_true"].to_numpy(), frame[cols].to_numpy())
    return binary_metrics(frame["y_true"].to_numpy(), frame["p"].to_numpy())


def robustness(per_pattern: dict[str, dict[str, Any]], full: str, key: str = "auroc",
               min_n: int = 10) -> dict[str, Any]:
    """Each pattern's metric over the full-modality pattern's (``per_pattern``: every pattern where
    both are defined); ``mean`` and ``worst`` over the incomplete patterns with at least ``min_n``
    subjects, since the AUROC of a 3-subject group is noise."""
    base = per_pattern.get(full, {}).get(key)
    ratios: dict[str, float | None] = {}
    for pattern, m in per_pattern.items():
        value = m.get(key)
        ratios[pattern] = value / base if (base and value is not None) else None
    incomplete = [r for p, r in ratios.items()
                  if p != full and r is not None and per_pattern[p].get("n", 0) >= min_n]
    return {"metric": key, "full": full, "full_value": base, "min_n": min_n,
            "mean": float(np.mean(incomplete)) if incomplete else None,
            "worst": float(np.min(incomplete)) if incomplete else None,
            "per_pattern": ratios}


def discrimination_report(predictions: pd.DataFrame, task_kind: str, modalities: list[str],
                          min_n: int = 10) -> dict[str, Any]:
    """Overall metrics, ``per_pattern`` metrics (with ``n``) and ``robustness`` vs the full pattern.

    ``predictions`` has the ``predictions.csv`` columns; rows without a target are ignored. Survival: the
    overall C-index is :func:`fold_c_index`'s (per-fold mean when there is a ``fold`` column); a pattern's
    subjects are too few per fold, so its C-index pools them after centring each fold's risks on the whole
    fold's median. Every entry names its ``c_index_method``.
    """
    labelled = predictions.dropna(subset=["time", "event"] if task_kind == "survival" else ["y_true"])
    if task_kind == "survival":
        return _survival_report(labelled, modalities, min_n)
    report = _metrics(labelled, task_kind)
    per_pattern = {str(p): _metrics(g, task_kind) for p, g in labelled.groupby("pattern", sort=True)}
    report["per_pattern"] = per_pattern
    report["robustness"] = robustness(per_pattern, "+".join(modalities),
                                      "c_index" if task_kind == "survival" else "auroc", min_n)
    return report


def _survival_report(labelled: pd.DataFrame, modalities: list[str], min_n: int) -> dict[str, Any]:
    folds = _folds(labelled)
    time, event = labelled["time"].to_numpy(), labelled["event"].to_numpy()
    report = fold_c_index(time, event, labelled["p"].to_numpy(), folds)
    centred = labelled.assign(p=centre_per_fold(labelled["p"].to_numpy(), folds))
    method = PLAIN if report["c_index_method"] == PLAIN else POOLED_CENTRED
    per_pattern = {str(p): {**survival_metrics(g["time"].to_numpy(), g["event"].to_numpy(), g["p"].to_numpy()),
                            "c_index_method": method}
                   for p, g in centred.groupby("pattern", sort=True)}
    report["per_pattern"] = per_pattern
    report["robustness"] = robustness(per_pattern, "+".join(modalities), "c_index", min_n)
    return report
