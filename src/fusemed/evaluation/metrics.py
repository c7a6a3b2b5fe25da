"""Discrimination metrics, overall and per missing-modality pattern, from a ``predictions.csv`` frame.

Binary: ``auroc``, ``auprc`` (average precision), ``balanced_accuracy`` (threshold 0.5), ``brier``
(binary form, mean of (p - y)^2 in [0, 1]). Multiclass: one-vs-rest macro AUROC, balanced accuracy,
multiclass Brier (sum over classes, in [0, 2]). Survival: Harrell's C-index (torchsurv).
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


def _metrics(frame: pd.DataFrame, task_kind: str) -> dict[str, Any]:
    if task_kind == "survival":
        return survival_metrics(frame["time"].to_numpy(), frame["event"].to_numpy(), frame["p"].to_numpy())
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

    ``predictions`` has the ``predictions.csv`` columns; rows without a target are ignored.
    """
    labelled = predictions.dropna(subset=["time", "event"] if task_kind == "survival" else ["y_true"])
    report = _metrics(labelled, task_kind)
    per_pattern = {str(p): _metrics(g, task_kind) for p, g in labelled.groupby("pattern", sort=True)}
    report["per_pattern"] = per_pattern
    report["robustness"] = robustness(per_pattern, "+".join(modalities),
                                      "c_index" if task_kind == "survival" else "auroc", min_n)
    return report
