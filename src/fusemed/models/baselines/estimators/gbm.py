"""``gbm``: histogram gradient boosting with native NaN handling, sized for small cohorts.

Why this one: it is the strongest off-the-shelf tabular learner, and it needs no imputation: a NaN
block (missing modality) is routed down its own branch at every split, so "not acquired" can itself be
informative. Default settings (31 leaves, 20 per leaf, 100 rounds at 0.1) overfit a cohort of 40, so
depth, leaf size and rounds are scaled to ``n`` and an L2 penalty on leaf values is always on. Early
stopping needs a held-out slice, which a small cohort cannot spare, so it is used only from 200 subjects.
A column with no value in the training fold carries nothing to split on (and makes scikit-learn's
binning fail), so a first pipeline step drops it (at fit and at prediction time).
(The settings are fixed rather than tuned by internal CV: with a few dozen subjects a CV over tree
settings mostly picks noise, and a fixed small-model recipe is reproducible and fast.)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from fusemed.models.baselines.estimators.common import ClassifierBaseline, drop_empty_columns

log = logging.getLogger(__name__)

#: from this many training subjects on, 10 % are held out for early stopping
EARLY_STOPPING_FROM = 200


def small_n_settings(n: int) -> dict[str, Any]:
    """Tree settings for ``n`` training subjects: shallow trees, leaves of ~5 % of n (3..20), slow learning."""
    return {
        "learning_rate": 0.05,
        "max_iter": 150,
        "max_depth": 2 if n < 100 else 3,
        "max_leaf_nodes": 4 if n < 100 else 8,
        "min_samples_leaf": int(np.clip(n // 20, 3, 20)),
        "l2_regularization": 1.0,
        "early_stopping": n >= EARLY_STOPPING_FROM,
    }


class GBMBaseline(ClassifierBaseline, name="gbm", tasks=("binary", "multiclass")):
    """Drop all-NaN columns -> ``HistGradientBoostingClassifier`` (NaN native); logits from clipped probabilities."""

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        settings = small_n_settings(len(X))
        drop, kept = drop_empty_columns(X)
        model = Pipeline([
            ("drop_empty", drop),
            ("model", HistGradientBoostingClassifier(random_state=self.seed, **settings)),
        ])
        model.fit(X, y)
        self.extra_["n_iter"] = int(model[-1].n_iter_)
        self.extra_["n_empty_columns"] = X.shape[1] - kept
        log.debug("gbm: %d rounds, %d empty columns dropped, settings %s", model[-1].n_iter_,
                  X.shape[1] - kept, settings)
        return model
