"""Per-vertex values (fsaverage) splatted into the volume: the surface view on a voxel grid.

The surface detectors score fsaverage5 vertices, whose coordinates are template (MNI-like) mm; the
volume detectors work on a `CommonGrid` in that same template space and bring their maps back to
each subject through its registration (`CommonGrid.back` with the subject -> template transform).
So a vertex map is splatted once onto the common grid, then goes back to the subject exactly like a
volume detector's map: one registration, one resampling, no second geometry.

Splatting: every voxel within `radius` mm of the mid-thickness surface (the cortical ribbon plus
the registration slack) takes the Gaussian-weighted mean (sigma = radius / 2) of its nearest
vertices (scipy KD-tree). The voxel -> vertex weights depend on the grid only, so they are computed
once per grid (`Splat`) and reused for every subject.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import nibabel as nib
import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from fusemed.diagnosis.grid import CommonGrid
from fusemed.models.mesh import surface_coordinates

#: Nearest vertices averaged per voxel (fsaverage5 vertices are ~3 mm apart on the pial surface).
NEIGHBOURS = 8


@lru_cache(maxsize=2)
def mid_surface(mesh: str = "fsaverage5") -> np.ndarray:
    """(V, 3) mid-thickness coordinates of `mesh` (nilearn's files, left then right hemisphere, the
    vertex order of `fusemed.models.mesh`): between white and pial, where a cortical lesion's voxels are,
    rather than on the pial boundary."""
    return ((surface_coordinates(mesh, "pial") + surface_coordinates(mesh, "white_matter")) / 2).astype(np.float64)


@dataclass(frozen=True)
class Splat:
    """Voxel <- vertex weights on one grid: `weights` (N, V) CSR, rows summing to 1, for the ribbon
    voxels `index` (N,) (flat indices into the grid)."""

    grid: CommonGrid
    index: np.ndarray
    weights: sparse.csr_matrix

    @classmethod
    def build(cls, grid: CommonGrid, coords: np.ndarray, radius: float) -> Splat:
        """Weights from the voxel centres of `grid` to vertices at `coords` (V, 3), same world mm."""
        lo, hi = coords.min(0) - radius, coords.max(0) + radius
        inv = np.linalg.inv(grid.affine)
        corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        ijk = (inv @ corners.T)[:3]
        start = np.clip(np.floor(ijk.min(1)).astype(int), 0, grid.shape)
        stop = np.clip(np.ceil(ijk.max(1)).astype(int) + 1, 0, grid.shape)
        box = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(start, stop, strict=True)],
                                   indexing="ij"), -1).reshape(-1, 3)
        xyz = box @ grid.affine[:3, :3].T + grid.affine[:3, 3]
        k = min(NEIGHBOURS, len(coords))
        dist, idx = cKDTree(coords).query(xyz, k=k, distance_upper_bound=radius)
        dist, idx = dist.reshape(len(xyz), k), idx.reshape(len(xyz), k)
        near = np.isfinite(dist)
        keep = near.any(1)
        w = np.where(near, np.exp(-0.5 * (dist / (radius / 2)) ** 2), 0.0)[keep]
        w /= w.sum(1, keepdims=True)
        rows = np.repeat(np.arange(int(keep.sum())), k)
        idx = np.where(near[keep], idx[keep], 0)
        weights = sparse.csr_matrix((w.ravel(), (rows, idx.ravel())), shape=(int(keep.sum()), len(coords)))
        flat = np.ravel_multi_index(tuple(box[keep].T), grid.shape)
        return cls(grid=grid, index=flat, weights=weights)

    def to_grid(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, V) vertex values -> ((K, D, H, W) on the grid, (D, H, W) ribbon 0/1); 0 off the ribbon."""
        values = np.atleast_2d(values)
        out = np.zeros((values.shape[0], int(np.prod(self.grid.shape))), np.float32)
        out[:, self.index] = (self.weights @ values.T).T
        ribbon = np.zeros(int(np.prod(self.grid.shape)), np.float32)
        ribbon[self.index] = 1.0
        return out.reshape(-1, *self.grid.shape), ribbon.reshape(self.grid.shape)

    def to_subject(self, values: np.ndarray, like: nib.Nifti1Image,
                   world: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(K, V) vertex values on `like`'s grid through `world` (subject -> template, as the volume
        detectors use): ((K, *like.shape) values, like.shape bool ribbon). Normalised by the resampled
        ribbon, so values at the ribbon's edge are not diluted by the zeros outside it."""
        maps, ribbon = self.to_grid(values)
        with warnings.catch_warnings():  # the 0/1 ribbon is resampled linearly on purpose: its coverage
            warnings.filterwarnings("ignore", message="Resampling binary images")
            cover = np.asarray(self.grid.back(ribbon, like, world).dataobj, np.float32)
        inside = cover > 0.5
        out = np.zeros((maps.shape[0], *like.shape[:3]), np.float32)
        for k, m in enumerate(maps):
            back = np.asarray(self.grid.back(m, like, world).dataobj, np.float32)
            out[k][inside] = back[inside] / cover[inside]
        return out, inside
