"""How much evidence of a planted lesion the images carry: the ideal observer, and the surface's share.

The *ideal observer* knows everything but the noise: the subject's healthy images and the lesion's
exact signal. Its statistic is the prewhitened matched filter, whose detectability index is

    d'^2 = delta^T Sigma^-1 delta        (Barrett & Myers, Foundations of Image Science, 2004)

with delta the lesion-induced change of the noise-free image and Sigma the noise covariance. No
detector working from the same images can do better: it sets the ceiling that a derived modality
(the cortex features, measured from these images) must stay under. Noise models (see `intensity`):
- MR: Rician noise of sigma per voxel, white; at brain signal levels it is Gaussian, so
  d'^2 = sum (delta / sigma)^2.
- PET: Gaussian noise of SD `pet_noise * sqrt(uptake)` per voxel, correlated by a Gaussian kernel of
  `PET_NOISE_CORRELATION_VOX` voxels: d'^2 = sum_k |F[delta / sd](k)|^2 / S(k) / N, with S the noise
  power spectrum (unit variance per voxel), floored at `SPECTRUM_FLOOR` of its peak: without a
  floor the model's noiseless high frequencies would make any sharp edge infinitely detectable.
Modalities have independent noise, so their d'^2 add.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fusemed.simulate.intensity import PET_NOISE_CORRELATION_VOX

SPECTRUM_FLOOR = 0.01


def ideal_white(delta: np.ndarray, sigma: float | np.ndarray) -> float:
    """d' of a known signal `delta` in white Gaussian noise of SD `sigma` (scalar or per voxel)."""
    z = np.asarray(delta, np.float64) / sigma
    return float(np.sqrt((z * z).sum()))


def ideal_correlated(delta: np.ndarray, sd: np.ndarray | float, corr_vox: float = PET_NOISE_CORRELATION_VOX,
                     floor: float = SPECTRUM_FLOOR) -> float:
    """d' of a known signal `delta` (D, H, W) in noise of SD `sd` per voxel whose correlation is a
    Gaussian kernel of `corr_vox` voxels (white noise filtered, then scaled to unit variance)."""
    u = np.asarray(delta, np.float64) / sd
    if not np.any(u):
        return 0.0
    impulse = np.zeros(u.shape)
    impulse[(0,) * u.ndim] = 1.0
    kernel = ndimage.gaussian_filter(impulse, corr_vox, mode="wrap")
    power = np.abs(np.fft.fftn(kernel)) ** 2 / float((kernel * kernel).sum())  # unit variance per voxel
    power = np.maximum(power, floor * power.max())
    spec = np.abs(np.fft.fftn(u)) ** 2
    return float(np.sqrt((spec / power).sum() / u.size))


def combine(*d: float) -> float:
    """d' of independent sources together: the root sum of squares."""
    return float(np.sqrt(sum(x * x for x in d)))
