"""A per-voxel normative model: how far each voxel of a subject lies from healthy controls.

A subtle dysplasia is a small departure from what that cortical location looks like in healthy
brains, not an unusual intensity in absolute terms (normal cortex varies more from place to place
than the lesion departs from it). The z-score against controls at the same template location is
therefore the feature both the `zscore` detector thresholds and the supervised nets read beside
the raw intensities (MELD and MAP07 likewise feed normalised features to their classifiers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage


@dataclass
class NormativeModel:
    """Mean and sd per modality and voxel over controls, after Gaussian smoothing by `sigma` voxels.

    The sd is floored by half the median sd inside `support` (per modality), so that voxels where
    a few controls happen to agree do not produce huge z-scores.
    """

    mean: np.ndarray  # (M, D, H, W)
    sd: np.ndarray  # (M, D, H, W)
    count: np.ndarray  # (M,) controls that had each modality
    sigma: float

    @classmethod
    def fit(cls, prepared: list[tuple[np.ndarray, np.ndarray, np.ndarray]], support: np.ndarray,
            sigma: float) -> NormativeModel:
        """From (x (M, D, H, W), present (M,), foreground) triples of controls on the common grid."""
        x0 = prepared[0][0]
        total = np.zeros(x0.shape)
        sq = np.zeros_like(total)
        n = np.zeros((x0.shape[0], 1, 1, 1))
        for x, present, _ in prepared:
            xs = smooth(x, sigma)
            total[present] += xs[present]
            sq[present] += xs[present] ** 2
            n[present] += 1
        nn_ = np.maximum(n, 1)
        mean = total / nn_
        var = np.maximum(sq / nn_ - mean ** 2, 0)
        floor = np.array([np.median(np.sqrt(v[support])) if support.any() else 1.0 for v in var])
        sd = np.sqrt(var + (0.5 * floor[:, None, None, None]) ** 2)
        return cls(mean.astype(np.float32), sd.astype(np.float32), n[:, 0, 0, 0].astype(np.float32), float(sigma))

    def usable(self, present: np.ndarray) -> np.ndarray:
        """(M,) modalities present in the subject AND seen in controls."""
        return present & (self.count > 0)

    def z(self, x: np.ndarray, present: np.ndarray) -> np.ndarray:
        """(M, D, H, W) z-scores; zero for modalities that are absent or unseen in controls."""
        out = np.zeros_like(x, dtype=np.float32)
        use = self.usable(present)
        out[use] = (smooth(x[use], self.sigma) - self.mean[use]) / self.sd[use]
        return out

    def tensors(self, prefix: str = "normative.") -> dict[str, torch.Tensor]:
        return {f"{prefix}mean": torch.from_numpy(self.mean), f"{prefix}sd": torch.from_numpy(self.sd),
                f"{prefix}count": torch.from_numpy(self.count),
                f"{prefix}sigma": torch.tensor(self.sigma, dtype=torch.float64)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str = "normative.") -> NormativeModel:
        return cls(tensors[f"{prefix}mean"].numpy(), tensors[f"{prefix}sd"].numpy(),
                   tensors[f"{prefix}count"].numpy(), float(tensors[f"{prefix}sigma"]))


def smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of each channel of x (C, D, H, W) by `sigma` voxels (no-op at 0)."""
    if sigma <= 0:
        return x
    return np.stack([ndimage.gaussian_filter(v, sigma) for v in x]) if len(x) else x
