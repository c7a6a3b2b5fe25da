"""Cross-validated training of multimodal models on Lightning, and applying trained runs.

Public API: :class:`TrainConfig`, :func:`train_run`, :func:`evaluate_run`, :func:`predict_run`, and the
uncertainty hook (:class:`FoldOutputs`, :func:`register_uncertainty`).
"""

from __future__ import annotations

from fusemed.training.config import TrainConfig
from fusemed.training.hooks import FoldOutputs, SplitOutputs, register_uncertainty
from fusemed.training.predict import evaluate_run, predict_cohort, predict_run
from fusemed.training.runner import train_run

__all__ = ["FoldOutputs", "SplitOutputs", "TrainConfig", "evaluate_run", "predict_cohort", "predict_run",
           "register_uncertainty", "train_run"]
