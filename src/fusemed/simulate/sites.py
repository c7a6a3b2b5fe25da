"""Acquisition sites: each has its own protocol (voxel size, orientation, intensity scale, noise).

Site effects are what makes a model trained at one hospital fail at the next; they are drawn from
the cohort seed, recorded in `truth/sites.csv`, and applied identically to every subject of a site.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Site:
    """One site's protocol. Noise levels are fractions of the white-matter signal."""

    name: str
    spacing: tuple[float, float, float]  # mm per voxel axis
    las: bool  # x axis stored left->right flipped (LAS) instead of RAS
    mr_scale: float  # scanner units of white matter on T1
    t1_gamma: float  # contrast exponent (different sequences)
    mr_noise: float  # Rician sigma / WM signal
    bias_strength: float  # SD of the log bias-field coefficients
    pet_fwhm: float  # mm, scanner point-spread
    pet_scale: float  # SUV of normal cortex
    pet_noise: float  # relative Poisson-like noise at cortex level
    has_flair: bool = True
    has_pet: bool = True

    def row(self) -> dict[str, object]:
        d = asdict(self)
        d["spacing"] = "x".join(f"{s:g}" for s in self.spacing)
        return d


def draw_sites(rng: np.random.Generator, k: int, base_spacing: float, scheme: str) -> list[Site]:
    """Draw `k` site protocols. Site A is the reference: isotropic RAS at `base_spacing`.

    Under the `site` missingness scheme the second site has no FLAIR protocol and the third no PET
    (with fewer sites, site A loses FLAIR), as in real multicentre studies.
    """
    sites = []
    for i in range(k):
        z = 1.0 if i == 0 else float(rng.choice([1.0, 1.0, 1.2, 1.4]))
        spacing = (base_spacing, base_spacing, round(base_spacing * z, 3))
        sites.append(
            Site(
                name=chr(ord("A") + i),
                spacing=spacing,
                las=bool(i % 2 == 1),
                mr_scale=float(np.round(1000 * np.exp(rng.normal(0, 0.25)), 1)),
                t1_gamma=float(np.round(rng.uniform(0.85, 1.15), 3)),
                mr_noise=float(np.round(rng.uniform(0.025, 0.05), 4)),
                bias_strength=float(np.round(rng.uniform(0.05, 0.15), 3)),
                pet_fwhm=float(np.round(rng.uniform(5.0, 7.0), 2)),
                pet_scale=float(np.round(7.0 * np.exp(rng.normal(0, 0.1)), 3)),
                pet_noise=float(np.round(rng.uniform(0.04, 0.08), 4)),
                has_flair=not (scheme == "site" and i == min(1, k - 1)),
                has_pet=not (scheme == "site" and k >= 3 and i == 2),
            )
        )
    return sites
