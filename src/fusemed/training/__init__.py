"""Cross-validated training of multimodal models on Lightning, and applying trained runs.

Public API: :class:`TrainConfig`, :func:`train_run`, :func:`evaluate_run`, :func:`predict_run`,
:func:`predict_cohort`.
"""

from __future__ import annotations

from fusemed.training.config import TrainConfig
from fusemed.training.predict import evaluate_run, predict_cohort, predict_run
from fusemed.training.runner import train_run

__all__ = ["TrainConfig", "evaluate_run", "predict_cohort", "predict_run", "train_run"]
