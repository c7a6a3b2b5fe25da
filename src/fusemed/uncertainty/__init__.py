"""Uncertainty: epistemic wrappers (MC dropout, ensembles, evidential), calibration, conformal sets.

`posthoc_fold` is the single entry point the training pipeline calls per fold; `uncertainty_report`
turns the resulting predictions into the uncertainty part of `metrics.json`.
"""

from __future__ import annotations

from fusemed.uncertainty.calibration import TemperatureScaler, logits_to_probs
from fusemed.uncertainty.conformal import (
    ConformalClassifier,
    conformal_quantile,
    format_sets,
    min_calibration_size,
)
from fusemed.uncertainty.ensemble import Ensemble, stack_members
from fusemed.uncertainty.entropy import decompose, summarize_members
from fusemed.uncertainty.evidential import (
    EvidentialHead,
    dirichlet_members,
    dirichlet_uncertainty,
    evidential_loss,
)
from fusemed.uncertainty.mc_dropout import MCDropout
from fusemed.uncertainty.posthoc import posthoc_fold
from fusemed.uncertainty.report import uncertainty_report

__all__ = [
    "ConformalClassifier",
    "Ensemble",
    "EvidentialHead",
    "MCDropout",
    "TemperatureScaler",
    "conformal_quantile",
    "decompose",
    "dirichlet_members",
    "dirichlet_uncertainty",
    "evidential_loss",
    "format_sets",
    "logits_to_probs",
    "min_calibration_size",
    "posthoc_fold",
    "stack_members",
    "summarize_members",
    "uncertainty_report",
]
