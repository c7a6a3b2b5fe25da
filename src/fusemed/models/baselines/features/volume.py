"""Volume features: regional means over the blocks of an adaptive average pool (default 4x4x4 = 64).

Why: a voxel-wise penalised model on a 96^3 grid has ~10^6 columns and overfits any cohort; block
means on the common grid are the classical "regional summary" and need nothing fitted, so they cannot
leak information across folds. (A PCA on top was left out on purpose: fitted on a few dozen training
volumes it adds variance and a fitted state, and 64 means are already small enough for the estimators.)
Blocks follow PyTorch's ``adaptive_avg_pool3d`` bounds, so a grid finer than the volume still works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fusemed.models.baselines.features.base import ModalityFeatures, nanmean


def adaptive_bounds(size: int, bins: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of every bin along an axis, as ``adaptive_avg_pool`` defines them."""
    return [((i * size) // bins, -((-(i + 1) * size) // bins)) for i in range(bins)]


class VolumeFeatures(ModalityFeatures, kind="volume"):
    """``(C, X, Y, Z)`` -> ``(C * gx * gy * gz,)`` block means (``r{block}``, or ``c{c}_r{block}`` if C > 1).

    Args:
        name: modality name.
        grid: blocks per axis; NaN voxels are skipped, an all-NaN block is NaN.
    """

    rank = 4

    def __init__(self, name: str, grid: Sequence[int] = (4, 4, 4)) -> None:
        super().__init__(name)
        self.grid = tuple(int(g) for g in grid)
        if len(self.grid) != 3 or min(self.grid) < 1:
            raise ValueError(f"volume grid must be 3 positive ints, got {grid}")

    def options(self) -> dict[str, object]:
        return {"grid": list(self.grid)}

    def _blocks(self) -> list[tuple[slice, slice, slice]]:
        axes = [adaptive_bounds(size, bins) for size, bins in zip(self.shape[1:], self.grid, strict=True)]
        return [
            (slice(*bx), slice(*by), slice(*bz)) for bx in axes[0] for by in axes[1] for bz in axes[2]
        ]

    def _names(self) -> list[str]:
        n_blocks = int(np.prod(self.grid))
        if self.shape[0] == 1:
            return [f"r{b}" for b in range(n_blocks)]
        return [f"c{c}_r{b}" for c in range(self.shape[0]) for b in range(n_blocks)]

    def _extract(self, sample: np.ndarray) -> np.ndarray:
        means = [nanmean(sample[(slice(None), *block)], axis=(1, 2, 3)) for block in self._blocks()]
        return np.stack(means, axis=1).reshape(-1)  # (C, blocks), channel-major like the names
