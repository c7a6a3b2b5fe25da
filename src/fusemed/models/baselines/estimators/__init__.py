"""Classical estimators behind the ``Baseline`` contract; importing registers them in ``BASELINES``."""

from __future__ import annotations

from fusemed.models.baselines.estimators.base import BASELINES, Baseline
from fusemed.models.baselines.estimators.common import ClassifierBaseline
from fusemed.models.baselines.estimators.cox import CoxBaseline
from fusemed.models.baselines.estimators.gbm import GBMBaseline
from fusemed.models.baselines.estimators.logistic import LogisticBaseline
from fusemed.models.baselines.estimators.rsf import RSFBaseline

__all__ = ["BASELINES", "Baseline", "ClassifierBaseline", "CoxBaseline", "GBMBaseline", "LogisticBaseline",
           "RSFBaseline"]
