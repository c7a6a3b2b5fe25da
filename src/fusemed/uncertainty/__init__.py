"""Uncertainty: methods as plug-ins (none, MC dropout, ensembles, evidential), calibration, conformal sets.

:class:`UncertaintyConfig` is a run's choice; :data:`METHODS` the registered methods (adding one is one
class, see :mod:`fusemed.uncertainty.methods`); :class:`Posthoc` what a run fits after training (saved
with it, applied by ``predict``); `uncertainty_report` the uncertainty part of `metrics.json`. This package
never imports the training package: training imports it.
"""

from __future__ import annotations

import lazy_loader

# lazy (SPEC 1): importing a submodule (e.g. a config) does not import torch, MONAI or Lightning
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "calibration": ["TemperatureScaler", "logits_to_probs"],
        "config": ["UncertaintyConfig"],
        "conformal": [
            "ConformalClassifier",
                        "conformal_quantile",
            "format_sets",
            "min_calibration_size",
        ],
        "ensemble": ["Ensemble", "stack_members"],
        "entropy": ["decompose", "summarize_members"],
        "evidential": ["EvidentialHead", "dirichlet_members", "dirichlet_uncertainty", "evidential_loss"],
        "mc_dropout": ["MCDropout"],
        "methods": ["METHODS", "UncertaintyMethod"],
        "outputs": ["FoldOutputs", "SplitOutputs"],
        "posthoc": ["Posthoc"],
        "report": ["uncertainty_report"],
    },
)
