"""The baseline contract: a classical estimator on a flat feature matrix, with deep-head outputs.

Why: "never lose to the classical baseline" only means something if the baseline is scored by the
same code as the deep models. So every baseline fits ``(n, d)`` features with NaN for missing data and
emits exactly what the deep heads emit: binary ``(n, 1)`` logit, multiclass ``(n, K)`` log-probabilities,
survival ``(n, 1)`` log-risk. Baselines register themselves by name with the tasks they handle, and are
saved as a skops file (no pickle) plus a JSON sidecar naming the class, task and seed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from fusemed.io import atomic_write_json
from fusemed.models.baselines.estimators.persist import load_estimator, save_estimator
from fusemed.models.config import TaskInfo
from fusemed.models.registry import BASELINES

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class Baseline:
    """Base of all baselines; a subclass registers itself with ``class X(Baseline, name=..., tasks=(...))``.

    Subclasses implement ``_fit(X, y) -> fitted sklearn object`` and ``_decision(X) -> (n, out_dim)``,
    reading the fitted object from ``self.model_``; small JSON-safe fitted values go in ``self.extra_``.

    Args:
        task: what to predict; a kind outside ``tasks`` raises ValueError.
        seed: seeds every random choice (CV splits, tree building) so a fit is reproducible.
    """

    name: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, name: str | None = None, tasks: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            if not tasks:
                raise TypeError(f"baseline {name!r} must declare the task kinds it handles")
            cls.name, cls.tasks = name, tuple(tasks)
            BASELINES.register(name, cls)

    def __init__(self, task: TaskInfo, seed: int = 0) -> None:
        if task.kind not in self.tasks:
            able = sorted(n for n, c in BASELINES.items() if task.kind in c.tasks)
            raise ValueError(
                f"baseline {self.name!r} handles {list(self.tasks)} tasks, not {task.kind!r}; "
                f"baselines for {task.kind}: {able}"
            )
        self.task = task
        self.seed = int(seed)
        self.model_: Any = None
        self.n_features_: int | None = None
        self.extra_: dict[str, Any] = {}

    @property
    def out_dim(self) -> int:
        """Columns of ``decision``: as many as the deep head for this task has outputs."""
        return self.task.n_classes if self.task.kind == "multiclass" else 1

    # --- fit / predict -------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> Baseline:
        """Fit on training features ``X (n, d)`` (NaN allowed) and targets ``y``; returns self."""
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        self.extra_ = {}
        self.model_ = self._fit(X, y)
        self.n_features_ = X.shape[1]
        log.debug("fitted baseline %s (%s) on %d x %d", self.name, self.task.kind, *X.shape)
        return self

    def decision(self, X: np.ndarray) -> np.ndarray:
        """``(n, out_dim)`` float64 in the deep heads' format (logit / log-probabilities / log-risk)."""
        X = self._check_X(X, fitted=True)
        out = np.asarray(self._decision(X), dtype=np.float64).reshape(len(X), self.out_dim)
        return out

    @property
    def fitted(self) -> bool:
        return self.model_ is not None

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decision(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- validation ----------------------------------------------------------------------------
    def _check_X(self, X: np.ndarray, fitted: bool = False) -> np.ndarray:
        if fitted and not self.fitted:
            raise NotFittedError(f"this {self.name!r} baseline is not fitted yet; call fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"features must be a 2-D (n, d) array, got shape {X.shape}")
        if np.isinf(X).any():
            raise ValueError("features contain +-inf; only NaN marks missing values")
        if fitted and X.shape[1] != self.n_features_:
            raise ValueError(f"features have {X.shape[1]} columns, the baseline was fitted on {self.n_features_}")
        return X

    def _check_y(self, y: np.ndarray, n: int) -> np.ndarray:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"{len(y)} targets for {n} feature rows")
        if self.task.kind == "survival":
            y = y.astype(np.float64)
            if y.shape != (n, 2) or not np.isfinite(y).all():
                raise ValueError(f"survival targets must be finite (n, 2) [time, event], got shape {y.shape}")
            if (y[:, 0] < 0).any():
                raise ValueError("survival times must be >= 0")
            if not np.isin(y[:, 1], (0.0, 1.0)).all() or y[:, 1].sum() == 0:
                raise ValueError("survival events must be 0/1 with at least one event")
            return y
        if y.ndim != 1 or not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"class labels must be a 1-D integer array, got shape {y.shape}")
        y = y.astype(np.int64)
        n_classes = self.task.n_classes if self.task.kind == "multiclass" else 2
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"class labels must lie in [0, {n_classes}), got {sorted(set(y.tolist()))}")
        if len(np.unique(y)) < 2:
            raise ValueError("training labels hold a single class; a classifier needs at least two")
        return y

    # --- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> list[Path]:
        """Write ``<path>.skops`` (the fitted estimator) and ``<path>.json`` (class, task, seed, extras)."""
        if not self.fitted:
            raise NotFittedError(f"this {self.name!r} baseline is not fitted yet; nothing to save")
        path = Path(path)
        meta = {
            "format": FORMAT_VERSION,
            "baseline": self.name,
            "task": {"kind": self.task.kind, "n_classes": self.task.n_classes},
            "seed": self.seed,
            "n_features": self.n_features_,
            "extra": self.extra_,
        }
        model = save_estimator(_with_suffix(path, ".skops"), self.model_)
        return [model, atomic_write_json(_with_suffix(path, ".json"), meta)]

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Rebuild a baseline saved with ``save(path)``; the JSON names its class."""
        path = Path(path)
        meta = json.loads(_with_suffix(path, ".json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: baseline format {meta.get('format')!r} is not {FORMAT_VERSION}")
        klass = BASELINES[meta["baseline"]]
        if not issubclass(klass, cls):
            raise ValueError(f"{path} holds baseline {meta['baseline']!r}, not a {cls.__name__}")
        obj = klass(TaskInfo(**meta["task"]), seed=meta["seed"])
        obj.model_ = load_estimator(_with_suffix(path, ".skops"))
        obj.n_features_ = int(meta["n_features"])
        obj.extra_ = dict(meta.get("extra") or {})
        return obj

    def __repr__(self) -> str:
        state = "fitted" if self.fitted else "unfitted"
        return f"{type(self).__name__}(task={self.task.kind!r}, seed={self.seed}, {state})"


def _with_suffix(path: Path, suffix: str) -> Path:
    """``path`` + suffix, keeping any dots in the name (``fold.0`` -> ``fold.0.json``)."""
    return path.with_name(path.name + suffix)
