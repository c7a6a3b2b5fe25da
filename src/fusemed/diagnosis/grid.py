"""A common RAS voxel grid for training, and the way back to each subject's own grid.

Networks and per-location models need every subject on the same lattice; clinicians need the
maps on the subject's own scan. `CommonGrid` does both: `resample` brings any NIfTI (LAS, RAS,
oblique) onto the lattice, `back` puts a lattice map onto the subject's reference image with
exactly its shape and affine.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nilearn.image import resample_img
from scipy import ndimage


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
        shape = np.asarray(img.shape[:3])
        corners = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                            for k in (0, shape[2] - 1)], dtype=float)
        world = (img.affine @ corners.T).T[:, :3]
        lo, hi = world.min(0), world.max(0)
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
        out = resample_img(img, target_affine=self.affine, target_shape=self.shape,
                           interpolation="nearest" if nearest else "linear", force_resample=True,
                           copy_header=True)
        return np.asarray(out.dataobj, dtype=np.float32)

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


def foreground(data: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Head/brain foreground of a (D, H, W) volume: above `fraction` of its 99th percentile, holes filled.

    A cheap stand-in for skull stripping that works on simulated and on skull-stripped scans.
    """
    thr = fraction * float(np.percentile(data, 99)) if data.size else 0.0
    mask = data > thr
    mask = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_fill_holes(mask)


def normalise(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Z-score a volume inside `mask` (zero outside), so sites and modalities share a scale."""
    vals = data[mask]
    if vals.size < 2:
        return np.zeros_like(data, dtype=np.float32)
    mu, sd = float(vals.mean()), float(vals.std()) + 1e-6
    out = (data - mu) / sd
    out[~mask] = 0.0
    return out.astype(np.float32)
