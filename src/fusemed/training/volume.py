"""Volumes onto one common world-space grid (affine respected: LAS/RAS, any shape), then normalised.

The grid is RAS at ``spacing`` mm over the training volumes' bounding box (or the MNI152 box). When a
volume's voxel centres already fall on the grid (e.g. the simulator's LAS 3 mm images on a RAS 3 mm grid),
resampling is an exact flip-and-copy; otherwise nilearn's ``resample_img`` (linear) does it. Resampled
volumes are kept in a process-wide LRU so cross-validation folds do not decompress and resample again.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterable

import nibabel as nib
import numpy as np
from monai.transforms import NormalizeIntensity
from nilearn.image import resample_img

from fusemed.cohort import Case
from fusemed.training.preprocessing import _EPS, Preprocessor

log = logging.getLogger(__name__)


class _ResampledCache:
    """Process-wide LRU of volumes already resampled onto a grid, keyed by file, mtime and grid.

    Cross-validation refits the intensity statistics per fold but usually lands on the same grid: the
    costly part (decompress + resample) is then done once per file, not once per fold. Budget in MB
    from ``FUSEMED_VOLUME_CACHE_MB`` (default 1024; 0 disables).
    """

    def __init__(self) -> None:
        self.items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.bytes = 0

    @staticmethod
    def key(img: nib.Nifti1Image, affine: np.ndarray, shape: tuple[int, ...]) -> tuple | None:
        name = img.get_filename()
        if not name:
            return None
        return (name, os.stat(name).st_mtime_ns, img.affine.tobytes(), affine.tobytes(), tuple(shape))

    def get(self, key: tuple | None) -> np.ndarray | None:
        if key is None or key not in self.items:
            return None
        self.items.move_to_end(key)
        return self.items[key]

    def put(self, key: tuple | None, value: np.ndarray) -> None:
        budget = float(os.environ.get("FUSEMED_VOLUME_CACHE_MB", "1024")) * 2**20
        if key is None or value.nbytes > budget:
            return
        self.items[key] = value
        self.bytes += value.nbytes
        while self.bytes > budget:
            _, old = self.items.popitem(last=False)
            self.bytes -= old.nbytes


_RESAMPLED = _ResampledCache()


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
        key = _RESAMPLED.key(img, self.affine, tuple(self.grid_shape))
        cached = _RESAMPLED.get(key)
        if cached is not None:
            return cached.copy()
        data = _aligned_copy(img, self.affine, tuple(self.grid_shape))
        if data is None:
            out = resample_img(img, target_affine=self.affine, target_shape=tuple(self.grid_shape),
                               interpolation="linear", fill_value=0.0, force_resample=True, copy_header=True)
            data = np.asarray(out.dataobj, dtype=np.float32)
        _RESAMPLED.put(key, data)
        return data.copy()

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


def _aligned_copy(img: nib.Nifti1Image, affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """Exact shortcut when the image's voxel centres fall on the grid's (same spacing, axes flipped at
    most, e.g. LAS data on a RAS grid): flips and a shifted copy, no interpolation. ``None`` otherwise."""
    vox = np.linalg.inv(affine) @ img.affine  # image voxel -> grid voxel
    lin, shift = vox[:3, :3], vox[:3, 3]
    signs = np.diag(lin)
    if not (np.allclose(lin, np.diag(signs), atol=1e-4) and np.allclose(np.abs(signs), 1, atol=1e-4)
            and np.allclose(shift, np.round(shift), atol=1e-3)):
        return None
    data = np.asarray(img.dataobj, dtype=np.float32)
    offset = np.round(shift).astype(int)
    for axis, sign in enumerate(signs):
        if sign < 0:  # grid index = -i + o  ->  flipped index i' = n-1-i lands at i' + o - (n-1)
            data = np.flip(data, axis)
            offset[axis] -= data.shape[axis] - 1
    out = np.zeros(shape, dtype=np.float32)
    src, dst = [], []
    for n_src, n_dst, o in zip(data.shape, shape, offset, strict=True):
        lo, hi = max(0, o), min(n_dst, o + n_src)
        if hi <= lo:
            return out
        dst.append(slice(lo, hi))
        src.append(slice(lo - o, hi - o))
    out[tuple(dst)] = data[tuple(src)]
    return out


def reference_grid(cases: Iterable[Case], names: list[str], spacing: float, grid: str = "training",
                   max_side: int = 96) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A RAS grid at ``spacing`` mm covering the training volumes (or the MNI152 box).

    Returns ``(affine (4, 4), shape (X, Y, Z))``. Only headers are read for the training box.
    """
    if grid == "mni152":
        from nilearn.datasets import load_mni152_template

        tpl = load_mni152_template(resolution=2)
        boxes = [_world_box(tpl.affine, tpl.shape)]
    else:
        boxes = [_world_box(c.load(m).affine, c.load(m).shape[:3]) for c in cases for m in names if c.has(m)]
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


def _world_box(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                        for k in (0, shape[2] - 1)], dtype=np.float64)
    world = (affine @ corners.T).T[:, :3]
    return world.min(axis=0), world.max(axis=0)
