"""Uncertainty: methods as plug-ins (none, MC dropout, ensembles, evidential), calibration, conformal sets.

:class:`UncertaintyConfig` is a run's choice; :data:`METHODS` the registered methods (adding one is one
class, see :mod:`fusemed.uncertainty.methods`); :class:`Posthoc` what a run fits after training (saved
with it, applied by ``predict``); `uncertainty_report` the uncertainty part of `metrics.json`. This package
never imports the training package: training imports it.
"""

from __future__ import annotations

from fusemed.uncertainty.calibration import TemperatureScaler, logits_to_probs
from fusemed.uncertainty.config import UncertaintyConfig
from fusemed.uncertainty.conformal import (
    ConformalClassifier,
    CrossConformalClassifier,
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
from fusemed.uncertainty.methods import METHODS, UncertaintyMethod
from fusemed.uncertainty.outputs import FoldOutputs, SplitOutputs
from fusemed.uncertainty.posthoc import Posthoc
from fusemed.uncertainty.report import uncertainty_report

__all__ = [
    "METHODS",
    "ConformalClassifier",
    "CrossConformalClassifier",
    "Ensemble",
    "EvidentialHead",
    "FoldOutputs",
    "MCDropout",
    "Posthoc",
    "SplitOutputs",
    "TemperatureScaler",
    "UncertaintyConfig",
    "UncertaintyMethod",
    "conformal_quantile",
    "decompose",
    "dirichlet_members",
    "dirichlet_uncertainty",
    "evidential_loss",
    "format_sets",
    "logits_to_probs",
    "min_calibration_size",
    "stack_members",
    "summarize_members",
    "uncertainty_report",
]
