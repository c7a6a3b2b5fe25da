"""Tiny synthetic subjects for the diagnosis tests: a noisy ellipsoid 'brain', an optional bright sphere."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from fusemed.diagnosis.data import DetectionCase

SHAPE = (24, 24, 24)
CENTRES = [(8, 12, 12), (15, 9, 13), (12, 15, 9), (14, 13, 15)]


def make_case(subject: str, seed: int, lesion_at: tuple[int, int, int] | None = None, radius: float = 2.5,
              amplitude: float = 1.5, las: bool = False, modalities=("t1", "flair", "pet"),
              shape=SHAPE) -> DetectionCase:
    rng = np.random.default_rng(seed)
    ii, jj, kk = np.indices(shape)
    c = (np.asarray(shape) - 1) / 2
    brain = ((ii - c[0]) / (0.42 * shape[0])) ** 2 + ((jj - c[1]) / (0.42 * shape[1])) ** 2 + \
        ((kk - c[2]) / (0.42 * shape[2])) ** 2 <= 1
    lesion = np.zeros(shape, bool)
    if lesion_at is not None:
        lesion = (ii - lesion_at[0]) ** 2 + (jj - lesion_at[1]) ** 2 + (kk - lesion_at[2]) ** 2 <= radius ** 2
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-23.0, -23.0, -23.0]
    vols = {}
    base = {"t1": 100.0, "flair": 60.0, "pet": 80.0}
    sign = {"t1": 1.0, "flair": 1.0, "pet": -1.0}
    for m in modalities:
        data = brain * base[m] * (1 + 0.05 * rng.standard_normal(shape))
        data = data + lesion * sign[m] * amplitude * 0.25 * base[m]
        vols[m] = data.astype(np.float32)
    mask = lesion.astype(np.uint8)
    if las:  # flip the first axis: same world, LAS voxel order
        flip = np.diag([-1.0, 1.0, 1.0, 1.0])
        flip[0, 3] = shape[0] - 1
        affine = affine @ flip
        vols = {m: v[::-1].copy() for m, v in vols.items()}
        mask = mask[::-1].copy()
    return DetectionCase(subject=subject, volumes={m: nib.Nifti1Image(v, affine) for m, v in vols.items()},
                         lesion=nib.Nifti1Image(mask, affine), label=int(lesion_at is not None))


def cohort(n_controls: int = 6, n_patients: int = 6, seed: int = 0, **kw) -> list[DetectionCase]:
    cases = [make_case(f"sub-c{i:02d}", seed + i, **kw) for i in range(n_controls)]
    cases += [make_case(f"sub-p{i:02d}", seed + 100 + i, lesion_at=CENTRES[i % len(CENTRES)], **kw)
              for i in range(n_patients)]
    return cases
