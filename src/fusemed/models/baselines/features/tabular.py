"""Tabular features: the raw standardised values with NaN restored, plus the missing indicators.

Why: the preprocessing fills a missing value with 0 (the training mean) and sets a flag; the deep
models need that, but a gradient-boosted tree handles NaN natively and an imputer fitted inside the
estimator's pipeline should decide the fill itself. So the value goes back to NaN wherever its flag
says missing, and the flags stay as features (missingness itself can be informative).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fusemed.models.baselines.features.base import ModalityFeatures


class TabularFeatures(ModalityFeatures, kind="tabular"):
    """``(2F,)`` = [values | flags] -> ``(2F,)`` = [values with NaN where flagged | flags].

    Args:
        name: modality name.
        columns: the F variable names (from the cohort spec) for readable feature names; default ``x0..``.
    """

    rank = 1

    def __init__(self, name: str, columns: Sequence[str] | None = None) -> None:
        super().__init__(name)
        self.columns = list(columns) if columns is not None else None

    def _validate_shape(self) -> None:
        width = self.shape[0]
        if width % 2:
            raise ValueError(f"modality {self.name!r}: tabular width {width} is not 2F (values | flags)")
        if self.columns is not None and len(self.columns) != width // 2:
            raise ValueError(f"modality {self.name!r}: {len(self.columns)} column names for {width // 2} values")

    def options(self) -> dict[str, object]:
        return {"columns": self.columns}

    def _names(self) -> list[str]:
        columns = self.columns or [f"x{k}" for k in range(self.shape[0] // 2)]
        return [*columns, *(f"{c}_missing" for c in columns)]

    def _extract(self, sample: np.ndarray) -> np.ndarray:
        n = sample.shape[0] // 2
        values, flags = sample[:n].copy(), sample[n:]
        values[flags > 0.5] = np.nan
        return np.concatenate([values, flags])
