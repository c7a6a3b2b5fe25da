"""The per-modality feature contract: one preprocessed sample -> a fixed-length float64 vector.

Why: a classical estimator needs one flat row per subject, and the deep models' preprocessed arrays
(volume grids, graphs, surface maps) are not rows. Each modality kind gets an extractor that registers
itself by kind, is fitted on the training fold's samples only (it records the sample shape, so a
modality absent from every sample of a later split still yields a block of the right width), and
round-trips through a JSON-safe ``state()``. A missing sample becomes a NaN block, never zeros, so an
estimator cannot mistake "not acquired" for "measured as zero".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from fusemed.models.registry import Registry

EXTRACTORS: Registry[type[ModalityFeatures]] = Registry("baseline feature extractor")


class ModalityFeatures:
    """Base of the extractors; a subclass registers itself with ``class X(ModalityFeatures, kind=...)``.

    Subclasses implement ``_names`` (unprefixed column names for the fitted shape) and ``_extract``
    (one validated sample -> ``(n_features,)``); keyword options of ``__init__`` must be JSON-safe and
    are returned by ``options`` so that ``state``/``from_state`` need nothing per subclass.
    """

    kind: ClassVar[str]
    rank: ClassVar[int]  # dimensions of one preprocessed sample

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
            EXTRACTORS.register(kind, cls)

    def __init__(self, name: str) -> None:
        self.name = name
        self.shape: tuple[int, ...] | None = None

    # --- fitting -------------------------------------------------------------------------------
    def fit(self, samples: Sequence[np.ndarray]) -> ModalityFeatures:
        """Record the training samples' common shape; a modality no training sample has cannot be fitted."""
        if not samples:
            raise ValueError(f"modality {self.name!r}: no training sample has it, so it has no features to learn")
        shapes = {np.shape(s) for s in samples}
        if len(shapes) != 1:
            raise ValueError(f"modality {self.name!r}: training samples differ in shape: {sorted(shapes)}")
        shape = shapes.pop()
        if len(shape) != self.rank:
            raise ValueError(f"modality {self.name!r} ({self.kind}): a sample of shape {shape} is not {self.rank}-D")
        self.shape = tuple(int(s) for s in shape)
        self._validate_shape()
        return self

    def _validate_shape(self) -> None:
        """Hook for kind-specific shape rules (raise ValueError)."""

    # --- transforming --------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.shape is not None

    @property
    def feature_names(self) -> list[str]:
        """Column names, prefixed with the modality name (``"conn:e12_40"``)."""
        self._check_fitted()
        return [f"{self.name}:{n}" for n in self._names()]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def transform(self, samples: Sequence[np.ndarray | None]) -> np.ndarray:
        """Samples (``None`` = missing) -> ``(n, n_features)`` float64, NaN rows where missing."""
        self._check_fitted()
        width = self.n_features
        out = np.full((len(samples), width), np.nan)
        for i, sample in enumerate(samples):
            if sample is None:
                continue
            array = np.asarray(sample, dtype=np.float64)
            if array.shape != self.shape:
                raise ValueError(
                    f"modality {self.name!r}: sample {i} has shape {array.shape}, training samples had {self.shape}"
                )
            out[i] = self._extract(array)
        return out

    def _names(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _extract(self, sample: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if self.shape is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"the {self.kind} features of {self.name!r} are not fitted; call fit first")

    # --- persistence ---------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The JSON-safe keyword options of ``__init__`` (besides ``name``)."""
        return {}

    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape or ()), "options": self.options()}

    @staticmethod
    def from_state(state: dict[str, Any]) -> ModalityFeatures:
        """Rebuild a fitted extractor of the kind ``state`` names."""
        cls = EXTRACTORS[state["kind"]]
        obj = cls(state["name"], **state.get("options", {}))
        obj.shape = tuple(int(s) for s in state["shape"])
        obj._validate_shape()
        return obj


def nanmean(array: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``np.nanmean`` without the 'Mean of empty slice' warning: an all-NaN region is NaN, as intended."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(array, axis=axis)
