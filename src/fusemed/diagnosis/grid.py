"""Detection-specific volume helpers: a foreground mask and a z-score inside it.

The common grid itself (resampling onto a lattice and back) is shared with prognosis: `fusemed.grid`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fusemed.grid import CommonGrid

__all__ = ["CommonGrid", "foreground", "normalise"]


def foreground(data: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Head/brain foreground of a (D, H, W) volume: above `fraction` of its 99th percentile, holes filled.

    A cheap stand-in for skull stripping that works on simulated and on skull-stripped scans.
    """
    thr = fraction * float(np.percentile(data, 99)) if data.size else 0.0
    mask = data > thr
    mask = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_fill_holes(mask)


def normalise(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Z-score a volume inside `mask` (zero outside), so sites and modalities share a scale."""
    vals = data[mask]
    if vals.size < 2:
        return np.zeros_like(data, dtype=np.float32)
    mu, sd = float(vals.mean()), float(vals.std()) + 1e-6
    out = (data - mu) / sd
    out[~mask] = 0.0
    return out.astype(np.float32)
