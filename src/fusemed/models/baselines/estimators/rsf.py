"""``rsf``: a random survival forest with native NaN handling, the tree-ensemble baseline for survival.

Why this one: a penalised Cox model is linear in its features; the classical answer to a non-linear
survival signal is a random survival forest (Ishwaran et al. 2008), and scikit-survival's routes a NaN
(a missing modality) down its own branch at every split, as ``gbm`` does for classification, so it needs
no imputation. Its output, the ensemble cumulative hazard summed over the training event times, is a
risk score, not a log-hazard: the decision is its ``log1p`` (monotone, so the C-index is unchanged, and on
a log scale like the Cox and deep heads' log-risks, which the survival blend rescales by their spread).
Leaves hold ~5 % of the training subjects (5..20), so a cohort of 40 grows shallow trees. The settings
are fixed, not tuned by internal CV, for the reason ``gbm`` gives.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.pipeline import Pipeline
from sksurv.ensemble import RandomSurvivalForest
from sksurv.util import Surv

from fusemed.models.baselines.estimators.base import Baseline
from fusemed.models.baselines.estimators.common import drop_empty_columns

log = logging.getLogger(__name__)

N_TREES = 100


class RSFBaseline(Baseline, name="rsf", tasks=("survival",)):
    """Drop all-NaN columns -> ``RandomSurvivalForest`` (NaN native); decision = log1p(risk score)."""

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        drop, kept = drop_empty_columns(X)
        forest = RandomSurvivalForest(n_estimators=N_TREES, min_samples_leaf=int(np.clip(len(X) // 20, 5, 20)),
                                      max_features="sqrt", low_memory=True, random_state=self.seed, n_jobs=1)
        model = Pipeline([("drop_empty", drop), ("model", forest)])
        model.fit(X, Surv.from_arrays(event=y[:, 1].astype(bool), time=y[:, 0]))
        self.extra_["n_empty_columns"] = X.shape[1] - kept
        log.debug("rsf: %d trees, %d empty columns dropped", N_TREES, X.shape[1] - kept)
        return model

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return np.log1p(np.maximum(self.model_.predict(X), 0.0))[:, None]
