"""Per-modality preprocessing, fitted on a fold's TRAINING split only and saved with the run as JSON.

One preprocessor per modality kind, self-registered by kind. Each turns what ``Case.load`` returns into
the per-sample array the models expect:

- volume  -> ``(1, X, Y, Z)`` on a common world-space grid (same for every volume modality, so early
  fusion can stack them), intensity-normalised per modality with MONAI ``NormalizeIntensity``;
- graph   -> ``(N, N + F)``: adjacency scaled by its training std | standardised node features;
- surface -> ``(V, F)`` standardised per feature;
- tabular -> ``(2F,)``: standardised values with NaN -> 0 | missing indicators.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusemed.cohort import Case, Cohort
from fusemed.training.io import atomic_write_json

log = logging.getLogger(__name__)

_EPS = 1e-6




class Preprocessor:
    """Base: ``fit`` on training values, ``__call__`` on one value, ``state``/``from_state`` for JSON."""

    kind: ClassVar[str]
    registry: ClassVar[dict[str, type[Preprocessor]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Preprocessor.registry[cls.kind] = cls

    def fit(self, values: Iterable[Any]) -> Preprocessor:
        raise NotImplementedError

    def __call__(self, value: Any) -> np.ndarray:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample output shape (no batch axis)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        obj = cls.__new__(cls)
        for key, value in state.items():
            setattr(obj, key, np.asarray(value, dtype=np.float64) if isinstance(value, list) else value)
        return obj


def _standardiser(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std of ``(n, F)`` ignoring NaN; constant or empty columns get std 1."""
    with np.errstate(all="ignore"):
        mean = np.nanmean(stack, axis=0) if len(stack) else np.zeros(stack.shape[1])
        std = np.nanstd(stack, axis=0) if len(stack) else np.ones(stack.shape[1])
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > _EPS), std, 1.0)
    return mean, std


class TabularPreprocessor(Preprocessor):
    """Standardised values | missing indicators; ``columns`` (the manifest names, in the order trained)
    lets a later cohort be matched by name, never by position."""

    kind = "tabular"
    columns: list[str] | None = None

    def fit(self, values: Iterable[np.ndarray]) -> TabularPreprocessor:
        self.mean, self.std = _standardiser(np.stack(list(values)).astype(np.float64))
        return self

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        columns = state.pop("columns", None)
        obj = super().from_state(state)
        obj.columns = None if columns is None else [str(c) for c in columns]  # type: ignore[attr-defined]
        return obj

    def order(self, name: str, declared: list[str]) -> list[int] | None:
        """Positions in ``declared`` of the trained columns (``None``: same order, or not recorded).

        Raises ``ValueError`` naming the columns when the cohort's set differs from the run's.
        """
        if self.columns is None or list(declared) == self.columns:
            return None
        missing = [c for c in self.columns if c not in declared]
        extra = [c for c in declared if c not in self.columns]
        if missing or extra:
            raise ValueError(
                f"modality {name!r}: the run was trained on columns {self.columns}; this cohort declares "
                f"{list(declared)}" + (f" (missing: {', '.join(missing)})" if missing else "")
                + (f" (not in the run: {', '.join(extra)})" if extra else "")
            )
        return [list(declared).index(c) for c in self.columns]

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        missing = np.isnan(value)
        z = np.where(missing, 0.0, (value - self.mean) / self.std)
        return np.concatenate([z, missing.astype(np.float64)]).astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (2 * len(self.mean),)


class SurfacePreprocessor(Preprocessor):
    kind = "surface"

    def fit(self, values: Iterable[np.ndarray]) -> SurfacePreprocessor:
        arrays = list(values)
        self.n_vertices = int(arrays[0].shape[0])
        self.mean, self.std = _standardiser(np.concatenate(arrays).astype(np.float64))
        return self

    def __call__(self, value: np.ndarray) -> np.ndarray:
        if value.shape != (self.n_vertices, len(self.mean)):
            raise ValueError(f"expected surface features ({self.n_vertices}, {len(self.mean)}), found {value.shape}")
        return ((value - self.mean) / self.std).astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_vertices, len(self.mean))


class GraphPreprocessor(Preprocessor):
    kind = "graph"

    def fit(self, values: Iterable[Any]) -> GraphPreprocessor:
        graphs = list(values)
        self.n_nodes = int(graphs[0].adjacency.shape[0])
        adj = np.stack([g.adjacency for g in graphs]).astype(np.float64)
        off = adj[:, ~np.eye(self.n_nodes, dtype=bool)]
        self.adjacency_scale = float(off.std()) if off.size and off.std() > _EPS else 1.0
        feats = [g.features for g in graphs if g.features is not None]
        n_feat = feats[0].shape[1] if feats else 0
        self.mean, self.std = (_standardiser(np.concatenate(feats).astype(np.float64)) if feats
                               else (np.zeros(0), np.ones(0)))
        self.n_features = int(n_feat)
        return self

    def __call__(self, graph: Any) -> np.ndarray:
        if graph.adjacency.shape != (self.n_nodes, self.n_nodes):
            raise ValueError(f"expected a graph of {self.n_nodes} nodes (as in training), "
                             f"found adjacency {graph.adjacency.shape}")
        adj = graph.adjacency / self.adjacency_scale
        if self.n_features == 0:
            return adj.astype(np.float32)
        feats = graph.features if graph.features is not None else np.full((self.n_nodes, self.n_features), np.nan)
        feats = np.nan_to_num((feats - self.mean) / self.std)
        return np.concatenate([adj, feats], axis=1).astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_nodes, self.n_nodes + self.n_features)


class Preprocessing:
    """The fitted preprocessors of one fold, by modality name (order = the run's modality order)."""

    def __init__(self, steps: dict[str, Preprocessor]) -> None:
        self.steps = steps

    @classmethod
    def fit(cls, cohort: Cohort, train_subjects: list[str], modalities: list[str], spacing: float,
            grid: str = "training", max_side: int = 96) -> Preprocessing:
        """Fit every modality's preprocessor on the training subjects that have it."""
        cases = [cohort[s] for s in train_subjects]
        kinds = {m: cohort.spec.modalities[m].kind.value for m in modalities}
        volumes = [m for m in modalities if kinds[m] == "volume"]
        affine, shape = reference_grid(cases, volumes, spacing, grid, max_side) if volumes else (None, None)
        steps: dict[str, Preprocessor] = {}
        for m in modalities:
            having = [c for c in cases if c.has(m)]
            if not having:
                raise ValueError(f"modality {m!r}: no training subject has it; drop it with --modalities")
            step = VolumePreprocessor(affine, shape) if kinds[m] == "volume" else Preprocessor.registry[kinds[m]]()
            steps[m] = step.fit(c.load(m) for c in having)
            if isinstance(step, TabularPreprocessor):
                step.columns = list(cohort.spec.modalities[m].columns or [])
            log.debug("fitted %s preprocessing on %d subjects", m, len(having))
        return cls(steps)

    def __call__(self, case: Case, name: str) -> np.ndarray:
        try:
            step, value = self.steps[name], case.load(name)
            if isinstance(step, TabularPreprocessor):
                order = step.order(name, case.spec.modalities[name].columns or [])
                if order is not None:
                    value = np.asarray(value)[order]
            return step(value)
        except ValueError as err:  # a reader's, a shape check's or nilearn's words: say whose data it is
            raise ValueError(f"subject {case.subject}, modality {name!r}: {err}") from err

    def check_cohort(self, cohort: Cohort) -> None:
        """Refuse (``ValueError``) a cohort whose tabular columns do not match the run's by name."""
        for name, step in self.steps.items():
            if isinstance(step, TabularPreprocessor) and name in cohort.spec.modalities:
                step.order(name, cohort.spec.modalities[name].columns or [])

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: s.shape for m, s in self.steps.items()}

    def save(self, path: Path) -> Path:
        return atomic_write_json(path, {m: {"kind": s.kind, **s.state()} for m, s in self.steps.items()})

    @classmethod
    def load(cls, path: Path) -> Preprocessing:
        import json

        raw = json.loads(Path(path).read_text())
        steps = {}
        for m, state in raw.items():
            kind = state.pop("kind")
            step = Preprocessor.registry[kind].from_state(state)
            for key in ("grid_shape", "n_nodes", "n_features", "n_vertices"):
                if hasattr(step, key) and isinstance(getattr(step, key), np.ndarray):
                    setattr(step, key, [int(v) for v in getattr(step, key)])
            steps[m] = step
        return cls(steps)


from fusemed.training.volume import VolumePreprocessor, reference_grid  # noqa: E402 - registers "volume"

__all__ = ["Preprocessing", "Preprocessor", "VolumePreprocessor", "reference_grid"]
