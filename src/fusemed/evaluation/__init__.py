"""Metrics overall and per missing-modality pattern."""

from __future__ import annotations

from fusemed.evaluation.metrics import (
    binary_metrics,
    discrimination_report,
    multiclass_metrics,
    robustness,
    survival_metrics,
)

__all__ = ["binary_metrics", "discrimination_report", "multiclass_metrics", "robustness", "survival_metrics"]
