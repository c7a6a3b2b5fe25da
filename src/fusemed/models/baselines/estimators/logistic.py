"""``logistic``: L2-penalised logistic regression, its strength chosen by stratified internal CV.

Why this one: it is the baseline a reviewer asks for first, it is well calibrated on small cohorts,
and with the imputer+scaler in front it takes the NaN blocks of missing modalities as they come. The
penalty is chosen on the training fold only (neg log-loss, the quantity the deep heads minimise), with
as many folds as the smallest class allows, so a class with three subjects does not break the fit.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import log_expit, log_softmax
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from fusemed.models.baselines.estimators.common import (
    ClassifierBaseline,
    impute_and_scale,
    n_folds,
    quiet_small_classes,
    supported_kwargs,
)

log = logging.getLogger(__name__)

#: inverse penalty strengths tried by the internal CV (strong to weak)
CS = tuple(np.logspace(-3, 2, 6).tolist())


class LogisticBaseline(ClassifierBaseline, name="logistic", tasks=("binary", "multiclass")):
    """Imputer -> scaler -> ``LogisticRegressionCV`` (L2, ``CS`` grid, stratified CV, neg log-loss)."""

    max_iter = 2000

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        folds = n_folds(y)
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
        kwargs = supported_kwargs(
            LogisticRegressionCV,
            Cs=list(CS),
            cv=cv,
            scoring="neg_log_loss",
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
            max_iter=self.max_iter,
            random_state=self.seed,
        )
        model = Pipeline([*impute_and_scale(), ("model", LogisticRegressionCV(**kwargs))])
        with quiet_small_classes():
            model.fit(X, y)
        c = np.ravel(model[-1].C_)[0]
        self.extra_["C"] = float(c)
        self.extra_["cv_folds"] = folds
        log.debug("logistic: C=%.3g chosen by %d-fold CV", c, folds)
        return model

    def _log_proba_seen(self, X: np.ndarray) -> np.ndarray:
        """Exact log-probabilities from the linear scores (no clipping: the logit is the linear predictor)."""
        scores = self.model_.decision_function(X)
        if scores.ndim == 1:  # two classes: the score is the logit of the second
            return np.stack([log_expit(-scores), log_expit(scores)], axis=1)
        return log_softmax(scores, axis=1)
