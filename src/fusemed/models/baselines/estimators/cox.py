"""``cox``: elastic-net penalised Cox regression, its penalty chosen by internal CV on the C-index.

Why this one: the Cox model is the reference for prognosis, and its linear predictor is exactly the
log-risk the deep survival head outputs, so both are scored by the same code. Without a penalty it
diverges as soon as features outnumber events (always, with connectomes or surfaces), hence
``CoxnetSurvivalAnalysis`` (l1_ratio 0.5) behind the same imputer+scaler as ``logistic``. The alpha
path is computed on the training fold, then each alpha is scored by cross-validated concordance in
folds stratified by event; a fold that cannot be fitted or scored (no events, no comparable pairs) is
skipped, not fatal.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from fusemed.models.baselines.estimators.base import Baseline
from fusemed.models.baselines.estimators.common import impute_and_scale, n_folds, quiet_small_classes

log = logging.getLogger(__name__)

L1_RATIO = 0.5
N_ALPHAS = 30
ALPHA_MIN_RATIO = 0.01  # the weakest penalty tried, relative to the smallest all-zero one


def cv_concordance(model: Pipeline, X: np.ndarray, y: np.ndarray, alphas: np.ndarray, seed: int) -> np.ndarray:
    """Mean held-out C-index of every alpha (NaN where no fold could be scored)."""
    event = y[:, 1].astype(bool)
    folds = n_folds(event) if 0 < event.sum() < len(event) else 2
    strata = event if 0 < event.sum() < len(event) else np.zeros(len(event))
    scores = np.full((folds, len(alphas)), np.nan)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with quiet_small_classes():
        splits = list(splitter.split(X, strata))
    for k, (train, test) in enumerate(splits):
        fold_model = clone(model).set_params(model__alphas=alphas)
        try:
            fold_model.fit(X[train], _surv(y[train]))
        except (ValueError, ArithmeticError) as err:
            log.debug("cox CV fold %d not fitted: %s", k, err)
            continue
        for j, alpha in enumerate(alphas):
            risk = fold_model.predict(X[test], alpha=alpha)
            try:
                scores[k, j] = concordance_index_censored(event[test], y[test, 0], risk)[0]
            except ValueError:  # no comparable pairs in this fold
                break
    with np.errstate(all="ignore"):
        counts = np.isfinite(scores).sum(axis=0)
        return np.where(counts > 0, np.nansum(scores, axis=0) / np.maximum(counts, 1), np.nan)


def _surv(y: np.ndarray) -> np.ndarray:
    """``(n, 2)`` [time, event] -> scikit-survival's structured array."""
    return Surv.from_arrays(event=y[:, 1].astype(bool), time=y[:, 0])


class CoxBaseline(Baseline, name="cox", tasks=("survival",)):
    """Imputer -> scaler -> ``CoxnetSurvivalAnalysis``; decision = linear predictor at the CV-chosen alpha."""

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        net = CoxnetSurvivalAnalysis(l1_ratio=L1_RATIO, n_alphas=N_ALPHAS, alpha_min_ratio=ALPHA_MIN_RATIO)
        model = Pipeline([*impute_and_scale(), ("model", net)])
        model.fit(X, _surv(y))
        alphas = np.asarray(model[-1].alphas_)
        scores = cv_concordance(model, X, y, alphas, self.seed)
        if np.isfinite(scores).any():
            best = int(np.nanargmax(scores))  # alphas decrease: ties go to the stronger penalty
        else:
            best = len(alphas) // 2
            log.warning("cox: no internal CV fold could be scored; using the middle of the alpha path")
        self.extra_["alpha"] = float(alphas[best])
        self.extra_["cv_cindex"] = float(scores[best]) if np.isfinite(scores[best]) else None
        log.debug("cox: alpha=%.3g (CV C-index %s)", alphas[best], self.extra_["cv_cindex"])
        return model

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X, alpha=self.extra_["alpha"])
