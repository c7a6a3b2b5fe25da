"""A common RAS voxel grid, and the way back to each subject's own grid: one module for both tasks.

Networks and per-location models need every subject on the same lattice; clinicians need the maps on the
subject's own scan. :class:`CommonGrid` does both for prognosis (``fusemed.training.volume``: a grid over
the training volumes' box) and lesion detection (``fusemed.diagnosis``: a grid over the MNI152 template,
each subject registered to it): ``resample`` brings any NIfTI (LAS, RAS, oblique) onto the lattice,
``back`` puts a lattice map onto a subject's reference image with exactly its shape and affine.

When a volume's voxel centres already fall on the grid (e.g. the simulator's LAS 3 mm images on a RAS
3 mm grid), resampling is an exact flip-and-copy; otherwise nilearn's ``resample_img`` does it. Resampled
volumes are kept in a process-wide LRU so cross-validation folds do not decompress and resample again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nilearn.image import resample_img


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
    def key(img: nib.Nifti1Image, affine: np.ndarray, shape: tuple[int, ...], nearest: bool = False) -> tuple | None:
        name = img.get_filename()
        if not name:
            return None
        return (name, os.stat(name).st_mtime_ns, img.affine.tobytes(), affine.tobytes(), tuple(shape), nearest)

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


@dataclass(frozen=True)
class CommonGrid:
    """An axis-aligned RAS lattice: `affine` (4, 4) and `shape` (D, H, W)."""

    affine: np.ndarray
    shape: tuple[int, int, int]

    @classmethod
    def covering(cls, img: nib.Nifti1Image, spacing: float, multiple: int = 8) -> CommonGrid:
        """The RAS grid at `spacing` mm covering `img`'s field of view.

        The shape is rounded up to a multiple of `multiple` so U-Nets with strided layers fit.
        """
        lo, hi = world_box(img.affine, img.shape[:3])
        n = np.ceil((hi - lo) / spacing).astype(int) + 1
        n = (np.ceil(n / multiple) * multiple).astype(int)
        affine = np.diag([spacing, spacing, spacing, 1.0])
        centre = (lo + hi) / 2
        affine[:3, 3] = centre - spacing * (n - 1) / 2
        return cls(affine=affine, shape=(int(n[0]), int(n[1]), int(n[2])))

    def resample(self, img: nib.Nifti1Image, nearest: bool = False,
                 world: np.ndarray | None = None) -> np.ndarray:
        """`img` on this grid, (D, H, W) float32 (zeros outside its field of view).

        `world` (4, 4) maps `img`'s world mm to this grid's world mm (a registration); it is folded
        into the affine, so the image is interpolated once.
        """
        if world is not None:
            img = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), world @ img.affine)
        key = _RESAMPLED.key(img, self.affine, self.shape, nearest)
        cached = _RESAMPLED.get(key)
        if cached is not None:
            return cached.copy()
        data = _aligned_copy(img, self.affine, self.shape)
        if data is None:
            out = resample_img(img, target_affine=self.affine, target_shape=self.shape,
                               interpolation="nearest" if nearest else "linear", fill_value=0.0,
                               force_resample=True, copy_header=True)
            data = np.asarray(out.dataobj, dtype=np.float32)
        _RESAMPLED.put(key, data)
        return data.copy()

    def back(self, data: np.ndarray, like: nib.Nifti1Image, world: np.ndarray | None = None) -> nib.Nifti1Image:
        """Map (D, H, W) `data` on this grid onto `like`'s grid (same shape and affine as `like`);
        `world` is the transform given to `resample` (inverted here)."""
        affine = self.affine if world is None else np.linalg.inv(world) @ self.affine
        src = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
        out = resample_img(src, target_affine=like.affine, target_shape=like.shape[:3],
                           interpolation="linear", force_resample=True, copy_header=True)
        arr = np.asarray(out.dataobj, dtype=np.float32)
        return nib.Nifti1Image(arr, like.affine)

    def to_json(self) -> dict:
        return {"affine": self.affine.tolist(), "shape": list(self.shape)}

    @classmethod
    def from_json(cls, d: dict) -> CommonGrid:
        return cls(affine=np.asarray(d["affine"], dtype=float), shape=tuple(int(s) for s in d["shape"]))


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


def world_box(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) world mm corner of a volume of ``shape`` under ``affine``."""
    corners = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                        for k in (0, shape[2] - 1)], dtype=np.float64)
    world = (affine @ corners.T).T[:, :3]
    return world.min(axis=0), world.max(axis=0)
