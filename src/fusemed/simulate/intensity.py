"""From tissue fractions to scanner images: contrasts, bias field, Rician MR noise, PET PSF + noise.

Tissue means are in units of the T1 white-matter signal (MR) or of normal cortical uptake (PET).
They follow the usual orderings (T1: WM > GM > CSF; FLAIR: lesion > GM > WM > suppressed CSF;
FDG: GM about 3x WM) without claiming a particular sequence.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fusemed.simulate.geometry import FOV_HI, FOV_LO
from fusemed.simulate.sites import Site

MEANS = {
    "t1": {"csf": 0.30, "gm": 0.62, "wm": 1.00, "les": 0.40},
    "flair": {"csf": 0.08, "gm": 0.80, "wm": 0.62, "les": 1.15},
    "pet": {"csf": 0.04, "gm": 1.00, "wm": 0.32, "les": 0.08},
}
#: SD (voxels) of the Gaussian that correlates PET noise (iterative reconstruction).
PET_NOISE_CORRELATION_VOX = 0.8


def tissue_image(fields: dict[str, np.ndarray], modality: str) -> np.ndarray:
    """Noise-free image in relative units from (modified) tissue fractions and planted effects.

    `fields` holds gm, wm, csf (fractions) and optionally les
    (lesion tissue), flair_add (additive FLAIR hyperintensity) and pet_mult (metabolism factor).
    """
    m = MEANS[modality]
    les = fields.get("les", 0.0)
    img = fields["csf"] * m["csf"] + fields["gm"] * m["gm"] + fields["wm"] * m["wm"] + les * m["les"]
    if modality == "flair" and "flair_add" in fields:
        img = img + fields["flair_add"] * m["wm"]
    if modality == "pet" and "pet_mult" in fields:
        img = img * fields["pet_mult"]
    return img.astype(np.float32)


def bias_field(rng: np.random.Generator, world: np.ndarray, strength: float, shape: tuple[int, ...]) -> np.ndarray:
    """Smooth multiplicative field exp(sum of 2nd-order polynomial terms), like TorchIO RandomBiasField."""
    u = (2 * (world - FOV_LO[:, None]) / (FOV_HI - FOV_LO)[:, None] - 1).astype(np.float32)
    x, y, z = u
    basis = [x, y, z, x * y, x * z, y * z, x * x - 1 / 3, y * y - 1 / 3, z * z - 1 / 3]
    coef = rng.normal(0.0, strength, size=len(basis))
    log_field = sum(c * b for c, b in zip(coef, basis, strict=True))
    return np.exp(log_field).reshape(shape).astype(np.float32)


def rician(rng: np.random.Generator, img: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of a complex signal with Gaussian noise in both channels (Gudbjartsson & Patz 1995)."""
    real = img + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag)


def mr_image(
    rng: np.random.Generator, clean: np.ndarray, site: Site, world: np.ndarray, gamma: float = 1.0
) -> np.ndarray:
    """Scanner MR image (int16-ready float): contrast exponent, bias field, Rician noise, site scale."""
    img = np.power(np.clip(clean, 0, None), gamma) * bias_field(rng, world, site.bias_strength, clean.shape)
    return np.round(rician(rng, img, site.mr_noise) * site.mr_scale)


def pet_blur(clean: np.ndarray, site: Site, spacing: np.ndarray) -> np.ndarray:
    """Scanner point-spread: Gaussian of the site's FWHM (mm) on the voxel grid."""
    sigma = site.pet_fwhm / (2 * np.sqrt(2 * np.log(2))) / spacing
    return ndimage.gaussian_filter(clean, sigma, mode="constant").astype(np.float32)


def pet_image(rng: np.random.Generator, blurred: np.ndarray, site: Site) -> np.ndarray:
    """Poisson-like reconstructed PET: noise variance proportional to the signal, spatially correlated
    over about a voxel (as after iterative reconstruction), in SUV-like units."""
    noise = ndimage.gaussian_filter(
        rng.normal(0.0, 1.0, blurred.shape).astype(np.float32), PET_NOISE_CORRELATION_VOX
    )
    noise /= max(float(noise.std()), 1e-6)
    img = blurred + site.pet_noise * np.sqrt(np.clip(blurred, 0, None)) * noise
    return (np.clip(img, 0, None) * site.pet_scale).astype(np.float32)


def cnr(lesioned: np.ndarray, healthy: np.ndarray, sigma: float) -> float:
    """Peak per-voxel contrast-to-noise of a planted change: max |lesioned - healthy| / sigma over the
    image. A reader sees a lesion when some voxels stand out of the noise (Rose criterion), so the
    visual-conspicuity flag uses the peak; the aggregate evidence is `detectability.ideal_observer`."""
    delta = np.abs(lesioned - healthy)
    return float(delta.max(initial=0.0) / sigma)
