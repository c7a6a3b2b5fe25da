"""Per-modality preprocessing, fitted on a fold's TRAINING split only and saved with the run as JSON.

One preprocessor per modality kind, self-registered by kind. Each turns what ``Case.load`` returns into
the per-sample array the models expect:

- volume  -> ``(1, X, Y, Z)`` on a common world-space grid (same for every volume modality, so early
  fusion can stack them), intensity-normalised per modality with MONAI ``NormalizeIntensity``;
- graph   -> ``(N, N + F)``: adjacency scaled by its training std | standardised node features;
- surface -> ``(V, F)`` standardised per feature;
- tabular -> ``(2F,)``: standardised values with NaN -> 0 | missing indicators.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import nibabel as nib
import numpy as np
from monai.transforms import NormalizeIntensity
from nilearn.image import resample_img

from fusemed.cohort import Case, Cohort
from fusemed.training.io import atomic_write_json

log = logging.getLogger(__name__)

_EPS = 1e-6


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


class Preprocessor:
    """Base: ``fit`` on training values, ``__call__`` on one value, ``state``/``from_state`` for JSON."""

    kind: ClassVar[str]
    registry: ClassVar[dict[str, type[Preprocessor]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Preprocessor.registry[cls.kind] = cls

    def fit(self, values: Iterable[Any]) -> Preprocessor:
        raise NotImplementedError

    def __call__(self, value: Any) -> np.ndarray:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample output shape (no batch axis)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        obj = cls.__new__(cls)
        for key, value in state.items():
            setattr(obj, key, np.asarray(value, dtype=np.float64) if isinstance(value, list) else value)
        return obj


def _standardiser(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std of ``(n, F)`` ignoring NaN; constant or empty columns get std 1."""
    with np.errstate(all="ignore"):
        mean = np.nanmean(stack, axis=0) if len(stack) else np.zeros(stack.shape[1])
        std = np.nanstd(stack, axis=0) if len(stack) else np.ones(stack.shape[1])
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > _EPS), std, 1.0)
    return mean, std


class TabularPreprocessor(Preprocessor):
    kind = "tabular"

    def fit(self, values: Iterable[np.ndarray]) -> TabularPreprocessor:
        self.mean, self.std = _standardiser(np.stack(list(values)).astype(np.float64))
        return self

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        missing = np.isnan(value)
        z = np.where(missing, 0.0, (value - self.mean) / self.std)
        return np.concatenate([z, missing.astype(np.float64)]).astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (2 * len(self.mean),)


class SurfacePreprocessor(Preprocessor):
    kind = "surface"

    def fit(self, values: Iterable[np.ndarray]) -> SurfacePreprocessor:
        arrays = list(values)
        self.n_vertices = int(arrays[0].shape[0])
        self.mean, self.std = _standardiser(np.concatenate(arrays).astype(np.float64))
        return self

    def __call__(self, value: np.ndarray) -> np.ndarray:
        if value.shape != (self.n_vertices, len(self.mean)):
            raise ValueError(f"expected surface features ({self.n_vertices}, {len(self.mean)}), found {value.shape}")
        return ((value - self.mean) / self.std).astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_vertices, len(self.mean))


class GraphPreprocessor(Preprocessor):
    kind = "graph"

    def fit(self, values: Iterable[Any]) -> GraphPreprocessor:
        graphs = list(values)
        self.n_nodes = int(graphs[0].adjacency.shape[0])
        adj = np.stack([g.adjacency for g in graphs]).astype(np.float64)
        off = adj[:, ~np.eye(self.n_nodes, dtype=bool)]
        self.adjacency_scale = float(off.std()) if off.size and off.std() > _EPS else 1.0
        feats = [g.features for g in graphs if g.features is not None]
        n_feat = feats[0].shape[1] if feats else 0
        self.mean, self.std = (_standardiser(np.concatenate(feats).astype(np.float64)) if feats
                               else (np.zeros(0), np.ones(0)))
        self.n_features = int(n_feat)
        return self

    def __call__(self, graph: Any) -> np.ndarray:
        if graph.adjacency.shape != (self.n_nodes, self.n_nodes):
            raise ValueError(f"expected a graph of {self.n_nodes} nodes (as in training), "
                             f"found adjacency {graph.adjacency.shape}")
        adj = graph.adjacency / self.adjacency_scale
        if self.n_features == 0:
            return adj.astype(np.float32)
        feats = graph.features if graph.features is not None else np.full((self.n_nodes, self.n_features), np.nan)
        feats = np.nan_to_num((feats - self.mean) / self.std)
        return np.concatenate([adj, feats], axis=1).astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_nodes, self.n_nodes + self.n_features)


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


class Preprocessing:
    """The fitted preprocessors of one fold, by modality name (order = the run's modality order)."""

    def __init__(self, steps: dict[str, Preprocessor]) -> None:
        self.steps = steps

    @classmethod
    def fit(cls, cohort: Cohort, train_subjects: list[str], modalities: list[str], spacing: float,
            grid: str = "training", max_side: int = 96) -> Preprocessing:
        """Fit every modality's preprocessor on the training subjects that have it."""
        cases = [cohort[s] for s in train_subjects]
        kinds = {m: cohort.spec.modalities[m].kind.value for m in modalities}
        volumes = [m for m in modalities if kinds[m] == "volume"]
        affine, shape = reference_grid(cases, volumes, spacing, grid, max_side) if volumes else (None, None)
        steps: dict[str, Preprocessor] = {}
        for m in modalities:
            having = [c for c in cases if c.has(m)]
            if not having:
                raise ValueError(f"modality {m!r}: no training subject has it; drop it with --modalities")
            step = VolumePreprocessor(affine, shape) if kinds[m] == "volume" else Preprocessor.registry[kinds[m]]()
            steps[m] = step.fit(c.load(m) for c in having)
            log.debug("fitted %s preprocessing on %d subjects", m, len(having))
        return cls(steps)

    def __call__(self, case: Case, name: str) -> np.ndarray:
        return self.steps[name](case.load(name))

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: s.shape for m, s in self.steps.items()}

    def save(self, path: Path) -> Path:
        return atomic_write_json(path, {m: {"kind": s.kind, **s.state()} for m, s in self.steps.items()})

    @classmethod
    def load(cls, path: Path) -> Preprocessing:
        import json

        raw = json.loads(Path(path).read_text())
        steps = {}
        for m, state in raw.items():
            kind = state.pop("kind")
            step = Preprocessor.registry[kind].from_state(state)
            for key in ("grid_shape", "n_nodes", "n_features", "n_vertices"):
                if hasattr(step, key) and isinstance(getattr(step, key), np.ndarray):
                    setattr(step, key, [int(v) for v in getattr(step, key)])
            steps[m] = step
        return cls(steps)
