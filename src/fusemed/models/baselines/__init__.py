"""Classical baselines as first-class models: "never lose to the classical baseline".

from fusemed.models.baselines import BASELINES, Baseline, FeatureMap

fm = FeatureMap.fit(train_items, kinds)           # fitted on the training fold only
est = BASELINES["logistic"](task=TaskInfo("binary"), seed=0).fit(fm.transform(train_items), y)
logits = est.decision(fm.transform(test_items))   # the deep heads' output format
"""

from __future__ import annotations

from fusemed.models.baselines.estimators import (
    BASELINES,
    Baseline,
    ClassifierBaseline,
    CoxBaseline,
    GBMBaseline,
    LogisticBaseline,
)
from fusemed.models.baselines.features import EXTRACTORS, FeatureMap, ModalityFeatures

__all__ = [
    "BASELINES",
    "EXTRACTORS",
    "Baseline",
    "ClassifierBaseline",
    "CoxBaseline",
    "FeatureMap",
    "GBMBaseline",
    "LogisticBaseline",
    "ModalityFeatures",
]
