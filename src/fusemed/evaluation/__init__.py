"""Metrics overall and per missing-modality pattern."""

from __future__ import annotations

from fusemed.evaluation.metrics import (
    binary_metrics,
    centre_per_fold,
    discrimination_report,
    fold_c_index,
    multiclass_metrics,
    robustness,
    survival_metrics,
)

__all__ = ["binary_metrics", "centre_per_fold", "discrimination_report", "fold_c_index", "multiclass_metrics",
           "robustness", "survival_metrics"]
