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
from sklearn.decomposition import PCA
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


def row_space() -> PCA:
    """An exact change of coordinates when features outnumber subjects.

    An L2-penalised linear model's weights lie in the span of the (centred) training rows, and the L2
    penalty is invariant to rotation, so fitting on the rows' coordinates in an orthonormal basis of that
    span (all principal components, nothing dropped, no whitening) gives the same decision function as
    fitting on the raw features, at the cost of n instead of d columns: 24 x 24 instead of 24 x 54,946
    for the mice connectomes. Every internal-CV subset's rows lie in the same span, so the penalty chosen
    by internal CV is the same too. Nothing is learnt from labels.
    """
    return PCA(n_components=None, whiten=False, svd_solver="full")


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
        steps = impute_and_scale()
        if X.shape[1] > X.shape[0]:  # more features than subjects (a connectome's edges): see row_space()
            steps.append(("row_space", row_space()))
        model = Pipeline([*steps, ("model", LogisticRegressionCV(**kwargs))])
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
