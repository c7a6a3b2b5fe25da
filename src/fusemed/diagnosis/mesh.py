"""The fsaverage5 mesh (both hemispheres, left then right) as a graph: edges, adjacency, coordinates.

Loaded once from the files nilearn ships (no download); vertex order matches the cohort contract's
surface modality (20484 = 2 x 10242 vertices, left then right).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import sparse


@dataclass(frozen=True)
class Mesh:
    """coords (V, 3) pial mm; edge_index (2, E) both directions; adjacency (V, V) CSR."""

    coords: np.ndarray
    edge_index: torch.Tensor
    adjacency: sparse.csr_matrix

    @property
    def n_vertices(self) -> int:
        return self.coords.shape[0]


def mesh_from_faces(coords: np.ndarray, faces: np.ndarray) -> Mesh:
    """Graph of a triangle mesh: coords (V, 3), faces (T, 3)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    both = np.concatenate([e, e[:, ::-1]]).T
    n = coords.shape[0]
    adj = sparse.csr_matrix((np.ones(both.shape[1], np.float32), (both[0], both[1])), shape=(n, n))
    return Mesh(coords=coords.astype(np.float32), edge_index=torch.from_numpy(both.astype(np.int64)),
                adjacency=adj)


@lru_cache(maxsize=2)
def load_mesh(name: str = "fsaverage5") -> Mesh:
    """The named fsaverage mesh, hemispheres joined (right-hemisphere indices offset by the left's size)."""
    from nilearn import datasets

    pial = datasets.load_fsaverage(name)["pial"]
    left, right = pial.parts["left"], pial.parts["right"]
    nl = left.coordinates.shape[0]
    coords = np.concatenate([left.coordinates, right.coordinates])
    faces = np.concatenate([left.faces, right.faces + nl])
    return mesh_from_faces(coords, faces)
