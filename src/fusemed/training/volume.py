"""Volumes onto one common world-space grid (affine respected: LAS/RAS, any shape), then normalised.

The grid is RAS at ``spacing`` mm over the training volumes' bounding box (or the MNI152 box); resampling
(exact flip-and-copy when the voxel centres align, nilearn otherwise, cached across folds) is the shared
:class:`fusemed.grid.CommonGrid`'s, the same as lesion detection's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import nibabel as nib
import numpy as np
from monai.transforms import NormalizeIntensity

from fusemed.cohort import Case
from fusemed.grid import CommonGrid, world_box
from fusemed.training.preprocessing import _EPS, Preprocessor

log = logging.getLogger(__name__)


class VolumePreprocessor(Preprocessor):
    """Resample onto the common grid (nilearn, affine respected: LAS/RAS, any shape), then normalise.

    The grid (``affine``, ``grid_shape``) is shared by every volume modality and set by
    :func:`reference_grid`; ``fit`` learns the intensity mean/std of nonzero voxels on that grid.
    """

    kind = "volume"

    def __init__(self, affine: np.ndarray | None = None, grid_shape: tuple[int, ...] | None = None) -> None:
        self.affine = None if affine is None else np.asarray(affine, dtype=np.float64)
        self.grid_shape = None if grid_shape is None else [int(s) for s in grid_shape]

    def resample(self, img: nib.Nifti1Image) -> np.ndarray:
        """``(X, Y, Z)`` float32 on the grid; voxels outside the subject's field of view are 0."""
        return CommonGrid(self.affine, tuple(self.grid_shape)).resample(img)

    def fit(self, values: Iterable[nib.Nifti1Image]) -> VolumePreprocessor:
        total, total_sq, count = 0.0, 0.0, 0
        for img in values:  # streamed: one volume in memory at a time
            data = self.resample(img)
            fg = data[data != 0].astype(np.float64)
            total, total_sq, count = total + fg.sum(), total_sq + (fg**2).sum(), count + fg.size
        self.mean = total / count if count else 0.0
        var = total_sq / count - self.mean**2 if count else 1.0
        self.std = float(np.sqrt(var)) if var > _EPS else 1.0
        return self

    def __call__(self, img: nib.Nifti1Image) -> np.ndarray:
        data = self.resample(img)
        norm = NormalizeIntensity(subtrahend=self.mean, divisor=self.std, nonzero=True)
        return np.asarray(norm(data[None]), dtype=np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (1, *self.grid_shape)


def reference_grid(cases: Iterable[Case], names: list[str], spacing: float, grid: str = "training",
                   max_side: int = 96) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A RAS grid at ``spacing`` mm covering the training volumes (or the MNI152 box).

    Returns ``(affine (4, 4), shape (X, Y, Z))``. Only headers are read for the training box.
    """
    if grid == "mni152":
        from nilearn.datasets import load_mni152_template

        tpl = load_mni152_template(resolution=2)
        boxes = [world_box(tpl.affine, tpl.shape)]
    else:
        boxes = [world_box(c.load(m).affine, c.load(m).shape[:3]) for c in cases for m in names if c.has(m)]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    shape = np.floor((hi - lo) / spacing).astype(int) + 1
    if (shape > max_side).any():
        log.warning("volume grid %s at %.1f mm is larger than max_grid=%d: cropped about its centre",
                    shape.tolist(), spacing, max_side)
        centre = (lo + hi) / 2
        shape = np.minimum(shape, max_side)
        lo = centre - (shape - 1) * spacing / 2
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = lo
    return affine, tuple(int(s) for s in shape)  # type: ignore[return-value]


