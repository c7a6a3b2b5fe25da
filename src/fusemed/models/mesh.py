"""The fsaverage mesh, once for the whole package: coordinates, the vertex graph, and a coarse graph.

Every user of the template surface reads it here (the surface encoders, the baselines' parcels, the
lesion detectors' vertex graph and their vertex -> voxel projection): one loader of nilearn's files, one
faces -> edges rule, one vertex order (left hemisphere, then right).

fsaverage5 has 20484 vertices (10242 per hemisphere, left then right); message passing on all of them
for every subject and epoch is slow on a CPU. fsaverage meshes are icosahedral subdivisions whose
first `10 * 4**k + 2` vertices per hemisphere are the order-k icosahedron, so we pool every vertex onto
its nearest order-k vertex on the sphere (k=3: 642 per hemisphere, 12-19 vertices each) and connect two
clusters when any mesh edge joins them. Meshes come from nilearn's bundled files (no download).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.spatial import cKDTree
from torch import Tensor

log = logging.getLogger(__name__)

BUNDLED_MESHES = {"fsaverage5": 20484}


@dataclass(frozen=True)
class CoarseMesh:
    """`assign` (V,) cluster of every vertex; `edge_index` (2, E) undirected cluster graph; `n_clusters`."""

    assign: Tensor
    edge_index: Tensor
    n_clusters: int


@functools.lru_cache(maxsize=8)
def _hemispheres(mesh: str, surface: str = "sphere") -> list[tuple[np.ndarray, np.ndarray]]:
    """(coordinates (V_h, 3), faces (T_h, 3)) of one of nilearn's surfaces per hemisphere, left then right."""
    if mesh not in BUNDLED_MESHES:
        raise ValueError(f"surface mesh {mesh!r} is not supported; bundled meshes: {sorted(BUNDLED_MESHES)}")
    from nilearn import datasets

    parts = datasets.load_fsaverage(mesh)[surface].parts
    return [(np.asarray(parts[h].coordinates), np.asarray(parts[h].faces)) for h in ("left", "right")]


def surface_coordinates(mesh: str = "fsaverage5", surface: str = "pial") -> np.ndarray:
    """(V, 3) mm coordinates of ``surface`` ("pial", "white_matter", "inflated", "sphere"), hemispheres joined."""
    return np.concatenate([coords for coords, _ in _hemispheres(mesh, surface)])


def hemisphere_of(mesh: str = "fsaverage5") -> np.ndarray:
    """(V,) 0 for a left-hemisphere vertex, 1 for a right one."""
    return np.concatenate([np.full(len(c), h, dtype=np.int8) for h, (c, _) in enumerate(_hemispheres(mesh))])


def _faces_to_edges(faces: np.ndarray) -> np.ndarray:
    """Triangles (T, 3) -> unique undirected edges as a (2, E) array with both directions."""
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs = np.concatenate([pairs, pairs[:, ::-1]])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0).T


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh as a graph: coords (V, 3) mm; edge_index (2, E) both directions; adjacency (V, V) CSR."""

    coords: np.ndarray
    edge_index: Tensor
    adjacency: sparse.csr_matrix

    @property
    def n_vertices(self) -> int:
        return self.coords.shape[0]


def mesh_from_faces(coords: np.ndarray, faces: np.ndarray) -> Mesh:
    """Graph of a triangle mesh: coords (V, 3), faces (T, 3)."""
    edges = _faces_to_edges(np.asarray(faces))
    n = coords.shape[0]
    adjacency = sparse.csr_matrix((np.ones(edges.shape[1], np.float32), (edges[0], edges[1])), shape=(n, n))
    return Mesh(coords=np.asarray(coords, dtype=np.float32), edge_index=torch.from_numpy(edges.astype(np.int64)),
                adjacency=adjacency)


@functools.lru_cache(maxsize=2)
def load_mesh(mesh: str = "fsaverage5") -> Mesh:
    """The pial ``mesh`` as a graph, hemispheres joined (right-hemisphere ids offset by the left's count)."""
    return mesh_from_faces(surface_coordinates(mesh, "pial"), _joined_faces(mesh))


def _joined_faces(mesh: str) -> np.ndarray:
    faces, offset = [], 0
    for coords, f in _hemispheres(mesh):
        faces.append(f + offset)
        offset += len(coords)
    return np.concatenate(faces)


@functools.lru_cache(maxsize=4)
def mesh_edge_index(mesh: str = "fsaverage5") -> Tensor:
    """Vertex graph of the whole mesh, (2, E) long; right-hemisphere ids offset by the left's count."""
    return torch.from_numpy(_faces_to_edges(_joined_faces(mesh))).long()


@functools.lru_cache(maxsize=8)
def coarse_mesh(mesh: str = "fsaverage5", level: int = 3) -> CoarseMesh:
    """Cluster the mesh onto its order-`level` icosahedron (per hemisphere) and build the cluster graph."""
    n_centres = 10 * 4**level + 2
    assigns, edges, offset, cluster_offset = [], [], 0, 0
    for coords, faces in _hemispheres(mesh):
        if n_centres > len(coords):
            raise ValueError(f"level {level} needs {n_centres} vertices/hemisphere; {mesh} has {len(coords)}")
        _, nearest = cKDTree(coords[:n_centres]).query(coords)
        assigns.append(nearest + cluster_offset)
        fine = _faces_to_edges(faces)
        coarse = nearest[fine] + cluster_offset
        edges.append(coarse[:, coarse[0] != coarse[1]])
        offset += len(coords)
        cluster_offset += n_centres
    edge_index = np.unique(np.concatenate(edges, axis=1), axis=1)
    log.debug("%s level %d: %d clusters, %d directed edges", mesh, level, cluster_offset, edge_index.shape[1])
    return CoarseMesh(
        assign=torch.from_numpy(np.concatenate(assigns)).long(),
        edge_index=torch.from_numpy(edge_index).long(),
        n_clusters=cluster_offset,
    )
