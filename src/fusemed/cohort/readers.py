"""Readers, one per stored kind: a path in, a checked in-memory object out.

Each reader raises :class:`ReadError` with what was expected, so ``validate`` can collect the message
and name the subject and file around it. A message names the error type, never the parser's own words,
which can quote the file (a graph cell pointing at a text file must not leak its first line). Volumes
load lazily (nibabel proxies): reading the header is cheap, the voxels are read when first used.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from fusemed.cohort.spec import MESH_VERTICES

VOLUME_SUFFIXES = (".nii", ".nii.gz")

#: Default budget of one volume in memory (as float32), in MiB; ``FUSEMED_MAX_VOLUME_MB`` overrides it.
DEFAULT_MAX_VOLUME_MB = 2048.0
#: Deflate cannot compress better than ~1032:1, so a .nii.gz declaring more than this many times its own
#: size (plus slack) is truncated or forged: refused without inflating it.
_MAX_GZIP_RATIO = 1100


def max_volume_bytes() -> int:
    """The configured per-volume budget in bytes (``FUSEMED_MAX_VOLUME_MB``, default 2048 MiB)."""
    text = os.environ.get("FUSEMED_MAX_VOLUME_MB", "")
    try:
        mb = float(text) if text else DEFAULT_MAX_VOLUME_MB
    except ValueError:
        mb = DEFAULT_MAX_VOLUME_MB
    return int(mb * 2**20)


def check_declared_size(img: nib.Nifti1Image, path: Path) -> None:
    """Refuse a volume whose header declares more voxels than the budget or than the file can hold.

    Only the header is consulted: no voxel is read, so a 1 KB file declaring 10000^3 costs nothing.
    """
    shape = tuple(int(d) for d in img.header.get_data_shape())
    if not shape or min(shape) < 1:
        raise ReadError(f"header declares an impossible shape {shape}")
    n = math.prod(shape)
    itemsize = max(int(img.header.get_data_dtype().itemsize), 1)
    in_memory = n * max(itemsize, 4)  # read as float32 (or wider)
    budget = max_volume_bytes()
    if in_memory > budget:
        raise ReadError(
            f"header declares {shape} voxels ({in_memory / 2**20:.0f} MiB in memory), over the "
            f"{budget / 2**20:.0f} MiB budget per volume (raise FUSEMED_MAX_VOLUME_MB to allow it)"
        )
    on_disk = n * itemsize
    size = path.stat().st_size
    if (path.name.endswith(".gz") and on_disk > _MAX_GZIP_RATIO * size + 2**20) or (
        not path.name.endswith(".gz") and on_disk > size
    ):
        raise ReadError(f"header declares {shape} voxels but the file is only {size} bytes: truncated or corrupt")


class ReadError(ValueError):
    """A file exists but does not hold what its modality promises."""


@dataclass(frozen=True)
class Graph:
    """A subject's graph: weighted adjacency ``(N, N)`` and optional node features ``(N, F)``."""

    adjacency: np.ndarray
    features: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return int(self.adjacency.shape[0])


def _exists(path: Path) -> None:
    if not path.is_file():
        raise ReadError("file not found")


def _finite(array: np.ndarray, what: str) -> None:
    if array.size == 0:
        raise ReadError(f"{what} is empty")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ReadError(f"{what} holds {int(bad.sum())} NaN/Inf value(s); expected finite numbers")


def read_volume(path: Path) -> nib.Nifti1Image:
    """Open a 3D NIfTI lazily, keeping its affine; trailing singleton dimensions are dropped."""
    _exists(path)
    if not path.name.endswith(VOLUME_SUFFIXES):
        raise ReadError(f"expected a NIfTI file ({' or '.join(VOLUME_SUFFIXES)})")
    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for damaged headers
        raise ReadError(f"not a readable NIfTI file ({type(err).__name__})") from None
    check_declared_size(img, path)
    shape = img.shape
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ReadError(f"expected a 3D volume, found shape {tuple(img.shape)} ({len(img.shape)}D)")
    if shape != img.shape:
        try:
            img = nib.Nifti1Image(np.asanyarray(img.dataobj).reshape(shape), img.affine, img.header)
        except (EOFError, OSError, zlib.error, ValueError, OverflowError, MemoryError) as err:
            raise ReadError(f"truncated or corrupt image data ({type(err).__name__})") from None
    affine = img.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ReadError(f"affine is not invertible or not finite: {affine.tolist()}")
    return img


def load_volume_data(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """Read every voxel once (catches truncated archives) and check they are finite."""
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError, OverflowError, MemoryError) as err:
        raise ReadError(f"truncated or corrupt image data ({type(err).__name__})") from None
    _finite(data, "image")
    return data


def _npz_arrays(path: Path, required: str, optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The ``required`` array (and any ``optional`` ones present) of an ``.npz``, never unpickling."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if required not in npz:
                raise ReadError(f"npz has no {required!r} array (found {sorted(npz.files)})")
            return {k: np.asarray(npz[k]) for k in (required, *optional) if k in npz}
    except ReadError:
        raise
    except Exception as err:
        raise ReadError(f"unreadable .npz file ({type(err).__name__})") from None


def read_graph(path: Path) -> Graph:
    """Read a graph from ``.npz`` (``adjacency`` [+ ``features``]) or a square ``.csv``/``.tsv`` matrix."""
    _exists(path)
    name = path.name.lower()
    try:
        if name.endswith(".npz"):
            arrays = _npz_arrays(path, "adjacency", ("features",))
            adjacency = arrays["adjacency"].astype(np.float32)
            features = arrays["features"].astype(np.float32) if "features" in arrays else None
        elif name.endswith((".csv", ".tsv")):
            sep = "\t" if name.endswith(".tsv") else ","
            adjacency = pd.read_csv(path, sep=sep, header=None).to_numpy(dtype=np.float32)
            features = None
        else:
            raise ReadError("expected a graph as .npz, .csv or .tsv")
    except ReadError:
        raise
    except Exception as err:
        raise ReadError(f"unreadable graph file: expected a numeric matrix ({type(err).__name__})") from None
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ReadError(f"adjacency must be square (N, N), found shape {adjacency.shape}")
    _finite(adjacency, "adjacency")
    if features is not None:
        if features.ndim == 1:
            features = features[:, None]
        if features.shape[0] != adjacency.shape[0]:
            raise ReadError(f"features have {features.shape[0]} rows but the graph has {adjacency.shape[0]} nodes")
        _finite(features, "node features")
    return Graph(adjacency, features)


def read_surface(path: Path, mesh: str | None = None) -> np.ndarray:
    """Read per-vertex features ``(V, F)`` from ``.npz`` (``features``) or GIfTI data arrays."""
    _exists(path)
    name = path.name.lower()
    try:
        if name.endswith(".npz"):
            features = _npz_arrays(path, "features")["features"].astype(np.float32)
        elif name.endswith(".gii") or name.endswith(".gii.gz"):
            arrays = [np.asarray(d.data, dtype=np.float32) for d in nib.load(str(path)).darrays]
            if not arrays:
                raise ReadError("GIfTI file holds no data array")
            features = np.stack(arrays, axis=-1) if arrays[0].ndim == 1 else arrays[0]
        else:
            raise ReadError("expected surface features as .npz or GIfTI (.gii)")
    except ReadError:
        raise
    except Exception as err:
        raise ReadError(f"unreadable surface file ({type(err).__name__})") from None
    if features.ndim == 1:
        features = features[:, None]
    if features.ndim != 2:
        raise ReadError(f"expected per-vertex features (V, F), found shape {features.shape}")
    if mesh is not None and features.shape[0] != MESH_VERTICES[mesh]:
        raise ReadError(f"{mesh} has {MESH_VERTICES[mesh]} vertices, found {features.shape[0]} rows")
    _finite(features, "surface features")
    return features


def read_vertex_labels(path: Path, mesh: str | None = None) -> np.ndarray:
    """Read per-vertex labels ``(V,)`` from ``.npz`` (``labels``) or a one-array GIfTI."""
    _exists(path)
    if path.name.lower().endswith(".npz"):
        labels = _npz_arrays(path, "labels")["labels"]
    else:
        labels = read_surface(path, mesh)[:, 0]
    labels = labels.reshape(-1)
    if mesh is not None and labels.shape[0] != MESH_VERTICES[mesh]:
        raise ReadError(f"{mesh} has {MESH_VERTICES[mesh]} vertices, found {labels.shape[0]} labels")
    if not np.isin(labels, (0, 1)).all():
        raise ReadError("vertex labels must be 0 or 1")
    return labels.astype(np.uint8)


#: Reader per file-backed modality kind; tabular values come from the manifest itself.
READERS: dict[str, Callable[..., object]] = {
    "volume": read_volume,
    "graph": read_graph,
    "surface": read_surface,
}
