"""Real anatomy shipped inside nilearn: the only input the simulator needs, loaded once per process.

Everything is read from files that nilearn installs with itself (no download): the ICBM 2009c
symmetric MNI152 T1 and its grey/white-matter probability maps, the fsaverage5 meshes with their
thickness, curvature and sulcal depth, and the Power et al. (2011) 264 ROI coordinates, whose
network labels (default mode, ...) we take from the nearest Seitzman et al. (2018) ROI, which
re-labels the same coordinates.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

#: MNI coordinates (mm) of the thalamus centres; targets of the diaschisis in the coma scenario.
THALAMUS_MM = {"left": np.array([-11.0, -18.0, 7.0]), "right": np.array([11.0, -18.0, 7.0])}
#: Approximate lateral-ventricle centres (mm), where the FLAIR transmantle sign tapers to.
VENTRICLE_MM = {"left": np.array([-16.0, -8.0, 18.0]), "right": np.array([16.0, -8.0, 18.0])}


def _nilearn_data() -> Path:
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data"


@dataclass(frozen=True)
class Surface:
    """fsaverage5 cortex, left then right hemisphere (V = 20484 vertices)."""

    mid: np.ndarray  # (V, 3) mid-thickness coordinates in mm
    normal: np.ndarray  # (V, 3) unit white->pial direction
    hemi: np.ndarray  # (V,) 0 left, 1 right
    thickness: np.ndarray  # (V,) mm
    curv: np.ndarray  # (V,)
    sulc: np.ndarray  # (V,)

    @property
    def cortical(self) -> np.ndarray:
        """(V,) bool: real cortex, i.e. not the medial wall (where fsaverage thickness is ~0)."""
        return self.thickness > 1.0


@dataclass(frozen=True)
class Anatomy:
    """Template tissue maps on a 2 mm MNI grid, the cortex surface and the ROI set.

    Volumes are (X, Y, Z) float32 on `affine` (RAS, 2 mm). `gm_blur`/`wm_blur` are the maps smoothed
    by 2 mm, used to blur the grey/white junction inside a dysplasia.
    """

    affine: np.ndarray
    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    gm_blur: np.ndarray
    wm_blur: np.ndarray
    surface: Surface
    roi_mm: np.ndarray  # (264, 3)
    roi_network: tuple[str, ...]  # (264,) network name per ROI

    @property
    def channels(self) -> dict[str, np.ndarray]:
        """The maps the renderer warps into each subject's space (the template is skull-stripped, so
        the images are too, as after a standard brain extraction)."""
        return {
            "gm": self.gm,
            "wm": self.wm,
            "csf": self.csf,
            "brain": self.brain,
            "gm_blur": self.gm_blur,
            "wm_blur": self.wm_blur,
        }

    @property
    def bbox_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """World bounding box (min, max) of the template field of view."""
        lo = self.affine[:3, 3]
        hi = lo + np.diag(self.affine)[:3] * (np.array(self.t1.shape) - 1)
        return lo, hi


def _load_1mm(name: str) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(_nilearn_data() / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz")
    data = np.asarray(img.dataobj, dtype=np.float32)
    return data / max(float(data.max()), 1e-6), img.affine


def _downsample2(data: np.ndarray) -> np.ndarray:
    """Block-average a 1 mm volume to 2 mm (odd edges cropped)."""
    x, y, z = (s // 2 * 2 for s in data.shape)
    d = data[:x, :y, :z]
    return d.reshape(x // 2, 2, y // 2, 2, z // 2, 2).mean(axis=(1, 3, 5)).astype(np.float32)


def _load_surface() -> Surface:
    from nilearn.datasets import load_fsaverage_data

    from fusemed.models.mesh import hemisphere_of, surface_coordinates

    parts = ("left", "right")
    white = surface_coordinates("fsaverage5", "white_matter")
    pial = surface_coordinates("fsaverage5", "pial")
    hemi = hemisphere_of("fsaverage5")

    def data(kind: str) -> np.ndarray:
        img = load_fsaverage_data("fsaverage5", data_type=kind)
        return np.concatenate([np.asarray(img.data.parts[h], dtype=np.float32) for h in parts])

    direction = pial - white
    norm = np.linalg.norm(direction, axis=1, keepdims=True)
    return Surface(
        mid=((white + pial) / 2).astype(np.float32),
        normal=(direction / np.maximum(norm, 1e-6)).astype(np.float32),
        hemi=hemi.astype(np.int8),
        thickness=data("thickness"),
        curv=data("curvature"),
        sulc=data("sulcal"),
    )


def _load_rois() -> tuple[np.ndarray, tuple[str, ...]]:
    import pandas as pd

    power = pd.read_csv(_nilearn_data() / "power_2011.csv")
    coords = power[["X", "Y", "Z"]].to_numpy(dtype=np.float32)
    seitz = pd.read_csv(_nilearn_data() / "seitzman_2018_ROIs_300inVol_MNI_allInfo.txt", sep=r"\s+")
    sc = seitz[["x", "y", "z"]].to_numpy(dtype=np.float32)
    nearest = np.argmin(((coords[:, None, :] - sc[None]) ** 2).sum(-1), axis=1)
    return coords, tuple(seitz["netName"].iloc[nearest].astype(str))


@functools.lru_cache(maxsize=1)
def load_anatomy() -> Anatomy:
    """Load and cache the template anatomy (about 2 s the first time in a process)."""
    t1_1mm, affine_1mm = _load_1mm("t1")
    gm = _downsample2(_load_1mm("gm")[0])
    wm = _downsample2(_load_1mm("wm")[0])
    t1 = _downsample2(t1_1mm)
    affine = affine_1mm.copy()
    affine[:3, :3] *= 2
    affine[:3, 3] = affine_1mm[:3, :3] @ np.full(3, 0.5) + affine_1mm[:3, 3]
    tissue = np.clip(gm + wm, 0, 1)
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(tissue > 0.3, iterations=3))
    brain = ndimage.gaussian_filter(brain.astype(np.float32), 0.5)
    csf = np.clip(brain - tissue, 0, 1).astype(np.float32)
    roi_mm, roi_network = _load_rois()
    logger.debug("anatomy loaded: %s voxels at 2 mm", t1.shape)
    return Anatomy(
        affine=affine,
        t1=t1,
        gm=gm,
        wm=wm,
        csf=csf,
        brain=brain.astype(np.float32),
        gm_blur=ndimage.gaussian_filter(gm, 1.0).astype(np.float32),
        wm_blur=ndimage.gaussian_filter(wm, 1.0).astype(np.float32),
        surface=_load_surface(),
        roi_mm=roi_mm,
        roi_network=roi_network,
    )
