"""The uncertainty steps `fusemed train --uncertainty NAME` runs after the folds are trained.

Adapter between the training hook (`fusemed.training.hooks`, which imports this module) and the
library: every step feeds each fold's calibration and test logits to `posthoc_fold`, concatenates the
folds' columns and scores them with `uncertainty_report`. The methods differ only in where the member
axis of the logits comes from:

* `none`        — one deterministic pass (with `--calibrate`: temperature scaling + conformal sets only).
* `mc_dropout`  — `mc_samples` dropout passes per subject (the runner's `(K, n, C)` logits).
* `ensemble`    — `ensemble_size` models per fold trained with different seeds, stacked by the runner.
* `evidential`  — the model's evidential head outputs log α; K = 50 draws from Dir(α) are the members.
Survival runs are left as they are (no conformal sets for a risk score yet).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from fusemed.training.hooks import FoldOutputs, register_uncertainty
from fusemed.uncertainty.evidential import dirichlet_members
from fusemed.uncertainty.posthoc import posthoc_fold
from fusemed.uncertainty.report import uncertainty_report

log = logging.getLogger(__name__)

EVIDENTIAL_SAMPLES = 50


def _members(logits: np.ndarray, method: str, seed: int) -> np.ndarray:
    """Logits with a member axis `(K, n, C)` (or `(n, C)` for a single deterministic pass)."""
    logits = np.asarray(logits, dtype=float)
    if method == "evidential":
        if logits.ndim == 3:  # MC dropout on top of an evidential head: use the mean log α
            logits = np.log(np.exp(logits).mean(axis=0))
        return dirichlet_members(torch.as_tensor(logits), EVIDENTIAL_SAMPLES, seed).numpy()
    if method in ("mc_dropout", "ensemble") and logits.ndim != 3:
        raise ValueError(
            f"--uncertainty {method} needs several predictions per subject (a member axis) but the fold "
            f"logits have shape {logits.shape}: set mc_samples > 0 (mc_dropout) or ensemble_size > 1"
        )
    return logits


def posthoc_step(folds: list[FoldOutputs], config: Any, method: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Columns indexed by subject for `predictions.csv`, and the uncertainty metrics for `metrics.json`."""
    if folds and folds[0].task_kind == "survival":
        log.warning("uncertainty step %r: survival targets get no calibration or conformal sets yet", method)
        return pd.DataFrame(index=pd.Index([], name="subject")), {}
    frames, conformal = [], {}
    for fold in folds:
        cal, test = fold.calibration, fold.test
        frame = posthoc_fold(
            _members(cal.logits, method, config.seed + fold.fold),
            cal.y,
            cal.patterns,
            _members(test.logits, method, config.seed + fold.fold + 10_000),
            test.patterns,
            calibrate=config.calibrate,
            alpha=config.alpha,
            score=config.conformal_score,
            groupby=config.conformal_groupby,
        )
        conformal[str(fold.fold)] = {
            "calibration_source": fold.calibration_source,
            "temperature": frame.attrs["temperature"],
            "groups": frame.attrs["conformal"],
        }
        frame.index = pd.Index(test.subjects, name="subject")
        frame["pattern"], frame["y_true"] = test.patterns, test.y
        frames.append(frame)
    columns = pd.concat(frames)
    # top-level keys (ece, coverage, ...) and per_pattern entries join the runner's metrics.json
    metrics = uncertainty_report(columns, alpha=config.alpha)
    metrics["uncertainty"] = {
        "method": method,
        "calibrated": bool(config.calibrate),
        "conformal_score": config.conformal_score,
        "conformal_groupby": config.conformal_groupby,
        "folds": conformal,
    }
    return columns.drop(columns=["pattern", "y_true"]), metrics


def _register(name: str) -> None:
    register_uncertainty(name)(lambda folds, config: posthoc_step(folds, config, name))


for _name in ("none", "mc_dropout", "ensemble", "evidential"):
    _register(_name)
