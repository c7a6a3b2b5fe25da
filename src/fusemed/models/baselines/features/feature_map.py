"""FeatureMap: a fold's multimodal samples -> one flat float64 matrix a classical estimator can fit.

Why: the classical baselines must see exactly the subjects, splits and preprocessing the deep models
see, so they start from the same preprocessed per-sample arrays. The map is fitted on the training
items only (it records each modality's sample shape and options, nothing learned from values), keeps
the run's modality order, and gives a missing modality a NaN block so the estimator's own imputer
(or a tree's native NaN handling) decides what "missing" means.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusemed.models.baselines.features.base import EXTRACTORS, ModalityFeatures
from fusemed.models.config import MODALITY_KINDS

log = logging.getLogger(__name__)

STATE_VERSION = 1
Item = Mapping[str, Any]


class FeatureMap:
    """The fitted extractors of one fold, in the run's modality order.

    Build it with ``FeatureMap.fit``; ``transform`` gives ``(n, d)``; ``feature_names`` and ``blocks``
    say which columns belong to which modality.
    """

    def __init__(self, extractors: Sequence[ModalityFeatures]) -> None:
        names = [e.name for e in extractors]
        if len(set(names)) != len(names):
            raise ValueError(f"modality names must be unique, got {names}")
        self.extractors = list(extractors)

    @classmethod
    def fit(
        cls,
        train_items: Sequence[Item],
        kinds: Mapping[str, str],
        *,
        columns: Mapping[str, Sequence[str]] | None = None,
        volume_grid: Sequence[int] = (4, 4, 4),
        surface_level: int = 2,
    ) -> FeatureMap:
        """Fit one extractor per modality of ``kinds`` on the training items that have it (a modality no
        training item has gets none: it has nothing to learn from, and ``transform`` ignores it).

        Args:
            train_items: ``{modality: preprocessed sample}`` per training subject; missing = absent key (or None).
            kinds: modality -> "volume" | "graph" | "surface" | "tabular", in the run's modality order.
            columns: tabular modality -> its variable names, for readable feature names.
            volume_grid: blocks per axis of the volume regional means.
            surface_level: icosahedron order of the surface regions (2 = 162 per hemisphere).
        """
        columns = columns or {}
        extractors: list[ModalityFeatures] = []
        for name, kind in kinds.items():
            kind = str(getattr(kind, "value", kind))
            if kind not in MODALITY_KINDS:
                raise ValueError(f"modality {name!r}: kind {kind!r} is not one of {MODALITY_KINDS}")
            options: dict[str, Any] = {
                "volume": {"grid": volume_grid},
                "surface": {"level": surface_level},
                "tabular": {"columns": columns.get(name)},
            }.get(kind, {})
            samples = [item[name] for item in train_items if item.get(name) is not None]
            if not samples:  # e.g. an inner fold of self-configuration without the one subject who has it
                log.info("baseline features: no training subject has %r: it is read as missing", name)
                continue
            extractor = EXTRACTORS[kind](name, **options)
            extractor.fit(samples)
            log.debug("baseline features: %s (%s) -> %d columns", name, kind, extractor.n_features)
            extractors.append(extractor)
        return cls(extractors)

    @property
    def modalities(self) -> list[str]:
        return [e.name for e in self.extractors]

    @property
    def feature_names(self) -> list[str]:
        return [n for e in self.extractors for n in e.feature_names]

    @property
    def n_features(self) -> int:
        return sum(e.n_features for e in self.extractors)

    @property
    def blocks(self) -> dict[str, slice]:
        """Modality -> its column slice of the matrix ``transform`` returns."""
        out, start = {}, 0
        for e in self.extractors:
            out[e.name] = slice(start, start + e.n_features)
            start += e.n_features
        return out

    def transform(self, items: Sequence[Item]) -> np.ndarray:
        """Items -> ``(n, d)`` float64; a missing modality's columns are NaN for that row."""
        if not self.extractors:
            return np.zeros((len(items), 0))
        parts = [e.transform([item.get(e.name) for item in items]) for e in self.extractors]
        return np.concatenate(parts, axis=1)

    def state(self) -> dict[str, Any]:
        """JSON-safe description; ``FeatureMap.from_state(fm.state())`` transforms identically."""
        return {"version": STATE_VERSION, "modalities": [e.state() for e in self.extractors]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureMap:
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"feature map state version {version!r} is not supported (expected {STATE_VERSION})")
        return cls([ModalityFeatures.from_state(s) for s in state["modalities"]])

    def __repr__(self) -> str:
        parts = ", ".join(f"{e.name}:{e.kind}[{e.n_features}]" for e in self.extractors)
        return f"FeatureMap({parts})"
