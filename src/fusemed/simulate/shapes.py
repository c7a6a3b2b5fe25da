"""Smooth spatial profiles in template mm: the building blocks of planted lesions.

All take template coordinates `x` (3, N) and return (N,) weights in [0, 1], so the same lesion can
be evaluated on any subject's voxels (after the warp) or on fsaverage5 vertices.
"""

from __future__ import annotations

import numpy as np


def soft_sphere(x: np.ndarray, centre: np.ndarray, radius: float, edge: float = 1.0) -> np.ndarray:
    """1 inside `radius`, 0 outside, logistic edge of width `edge` mm."""
    d = np.sqrt(((x - np.asarray(centre, dtype=np.float32)[:, None]) ** 2).sum(0))
    return (1.0 / (1.0 + np.exp(np.clip((d - radius) / edge, -50, 50)))).astype(np.float32)


def tapered_tube(x: np.ndarray, start: np.ndarray, end: np.ndarray, r_start: float, r_end: float) -> np.ndarray:
    """Gaussian tube from `start` to `end` whose radius and amplitude taper linearly (the FLAIR
    transmantle sign: widest under the dysplasia, thinning toward the ventricle)."""
    start = np.asarray(start, dtype=np.float32)
    seg = np.asarray(end, dtype=np.float32) - start
    length2 = float(seg @ seg) + 1e-6
    rel = x - start[:, None]
    t = np.clip((seg @ rel) / length2, 0.0, 1.0)
    closest = start[:, None] + seg[:, None] * t
    d2 = ((x - closest) ** 2).sum(0)
    radius = r_start * (1 - t) + r_end * t
    return (np.exp(-d2 / (2 * radius**2)) * (1 - 0.7 * t)).astype(np.float32)
