"""Surface features: per-vertex maps averaged within the regions of a coarse icosahedral parcellation.

Why: 20484 vertices x F features is far wider than any cohort; a penalised model on it would only
learn noise. fsaverage is an icosahedral subdivision, so pooling every vertex onto its nearest
vertex of a low-order icosahedron (``fusemed.models.mesh.coarse_mesh``; order 2 = 162 regions per
hemisphere) gives compact, roughly equal-area regions from the bundled mesh, with no atlas download.
"""

from __future__ import annotations

import numpy as np

from fusemed.models.baselines.features.base import ModalityFeatures
from fusemed.models.mesh import BUNDLED_MESHES, coarse_mesh


class SurfaceFeatures(ModalityFeatures, kind="surface"):
    """``(V, F)`` -> ``(R * F,)`` region means, region-major (``r{region}_f{feature}``).

    Args:
        name: modality name.
        level: icosahedron order of the regions (2: 162/hemisphere, 3: 642); NaN vertices are skipped.
        mesh: surface template; only the nilearn-bundled fsaverage5 is supported.
    """

    rank = 2

    def __init__(self, name: str, level: int = 2, mesh: str = "fsaverage5") -> None:
        super().__init__(name)
        self.level = int(level)
        self.mesh = mesh
        self._assign: np.ndarray | None = None

    def options(self) -> dict[str, object]:
        return {"level": self.level, "mesh": self.mesh}

    def _validate_shape(self) -> None:
        if self.mesh not in BUNDLED_MESHES:
            raise ValueError(f"surface mesh {self.mesh!r} is not supported; bundled meshes: {sorted(BUNDLED_MESHES)}")
        expected = BUNDLED_MESHES[self.mesh]
        if self.shape[0] != expected:
            raise ValueError(f"modality {self.name!r}: {self.shape[0]} vertices, but {self.mesh} has {expected}")

    @property
    def assign(self) -> np.ndarray:
        """Region of every vertex, ``(V,)``; computed from the bundled mesh on first use (not stored)."""
        if self._assign is None:
            self._assign = coarse_mesh(self.mesh, self.level).assign.numpy()
        return self._assign

    @property
    def n_regions(self) -> int:
        return 2 * (10 * 4**self.level + 2)

    def _names(self) -> list[str]:
        return [f"r{r}_f{k}" for r in range(self.n_regions) for k in range(self.shape[1])]

    def _extract(self, sample: np.ndarray) -> np.ndarray:
        finite = np.isfinite(sample)
        values = np.where(finite, sample, 0.0)
        sums = np.stack(
            [np.bincount(self.assign, weights=values[:, k], minlength=self.n_regions) for k in range(sample.shape[1])],
            axis=1,
        )
        counts = np.stack(
            [np.bincount(self.assign, weights=finite[:, k], minlength=self.n_regions) for k in range(sample.shape[1])],
            axis=1,
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return means.reshape(-1)
