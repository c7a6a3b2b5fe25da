"""Pieces every baseline shares: the imputer+scaler front, internal-CV fold counts, classifier outputs.

Why here: the imputer must live *inside* each estimator's pipeline so that its medians come from the
training fold only; fold counts must adapt to a class (or an event group) having only a few samples;
and the conversion from class probabilities to the deep heads' logits must be the same for every
classifier, including classes that a small training fold never saw.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy.special import log_softmax
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from fusemed.models.baselines.estimators.base import Baseline

#: probability floor: a class the model gives (numerically) zero still gets a finite logit
PROBA_FLOOR = 1e-6


def impute_and_scale() -> list[tuple[str, Any]]:
    """Median imputation (with missing indicators; all-NaN training columns kept as 0) then standardisation."""
    imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    return [("impute", imputer), ("scale", StandardScaler())]


def drop_empty_columns(X: np.ndarray) -> tuple[ColumnTransformer, int]:
    """A first pipeline step keeping the columns with a value in the training fold, and how many it keeps.

    A tree ensemble with native NaN has nothing to split on in an all-NaN column (and scikit-learn's
    binning fails on one); the step drops it at fit and prediction time alike."""
    kept = np.flatnonzero(~np.isnan(X).all(axis=0)).tolist()
    return ColumnTransformer([("kept", "passthrough", kept)], remainder="drop"), len(kept)


def n_folds(groups: np.ndarray, most: int = 5) -> int:
    """Stratified folds: ``most``, fewer if the smallest group is smaller, never under 2."""
    _, counts = np.unique(groups, return_counts=True)
    return int(max(2, min(most, counts.min())))


def supported_kwargs(estimator_cls: type, **kwargs: Any) -> dict[str, Any]:
    """Only the keyword arguments ``estimator_cls`` accepts, so newer-sklearn options (that silence
    deprecation warnings) are not passed to an older release that lacks them."""
    params = inspect.signature(estimator_cls).parameters
    return {k: v for k, v in kwargs.items() if k in params}


@contextmanager
def quiet_small_classes() -> Iterator[None]:
    """Hide sklearn's 'least populated class has only k members' warning: small folds are expected here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        warnings.filterwarnings("ignore", message=".*only one class.*")
        yield


class ClassifierBaseline(Baseline):
    """A classifier whose outputs are the deep heads': binary logit ``(n, 1)``, multiclass log-probs ``(n, K)``.

    Subclasses give ``_log_proba_seen(X)``: log-probabilities over the classes seen in training
    (``self.model_.classes_``); this class aligns them to all ``K`` task classes (an unseen class gets
    the ``PROBA_FLOOR`` probability, then rows are renormalised so each sums to one).
    """

    @property
    def n_classes(self) -> int:
        return self.task.n_classes if self.task.kind == "multiclass" else 2

    def _log_proba_seen(self, X: np.ndarray) -> np.ndarray:
        """Default: the estimator's ``predict_proba``, clipped to ``[floor, 1 - floor]``."""
        proba = np.clip(self.model_.predict_proba(X), PROBA_FLOOR, 1.0 - PROBA_FLOOR)
        return np.log(proba)

    def log_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n, K)`` log-probabilities of every task class; ``logsumexp`` over a row is 0."""
        X = self._check_X(X, fitted=True)
        seen = np.asarray(self.model_.classes_, dtype=np.int64)
        out = np.full((len(X), self.n_classes), np.log(PROBA_FLOOR))
        out[:, seen] = self._log_proba_seen(X)
        return log_softmax(out, axis=1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n, K)`` class probabilities, consistent with ``decision`` (sigmoid / softmax of it)."""
        return np.exp(self.log_proba(X))

    def _decision(self, X: np.ndarray) -> np.ndarray:
        log_p = self.log_proba(X)
        if self.task.kind == "binary":
            return (log_p[:, 1] - log_p[:, 0])[:, None]  # log(p / (1 - p))
        return log_p
