"""Patch augmentation for the supervised voxel detectors: MONAI transforms, nnU-Net's recipe scaled down.

nnU-Net trains every net with spatial (mirroring, rotation, scaling) and intensity (noise, brightness)
augmentation; with 20-100 training subjects it is what keeps a 3D net from memorising their lesions.
Applied to one patch whose last channel is the lesion mask: the spatial transforms move the image and
the mask together (the mask re-binarised at 0.5 after interpolation), the intensity transforms touch the
image channels only. Seeded from the epoch's draw, so a resumed run trains on the same patches.
"""

from __future__ import annotations

import torch
from monai.transforms import Compose, RandAffine, RandFlip, RandGaussianNoise, RandScaleIntensity
from monai.utils import convert_to_tensor


class PatchAugment:
    """Left-right mirroring (p 0.5: the common grid's first axis is left-right), a small rotation and
    scaling (p 0.2, +-15 deg, +-10 %), Gaussian noise (p 0.15, sd 0.1) and intensity scaling (p 0.15, +-10 %)
    of a (C + 1, D, H, W) patch, mask last."""

    def __init__(self) -> None:
        self.spatial = Compose([
            RandFlip(prob=0.5, spatial_axis=0),
            RandAffine(prob=0.2, rotate_range=(0.26, 0.26, 0.26), scale_range=(0.1, 0.1, 0.1),
                       mode="bilinear", padding_mode="zeros"),
        ])
        self.intensity = Compose([RandGaussianNoise(prob=0.15, std=0.1), RandScaleIntensity(factors=0.1, prob=0.15)])

    def __call__(self, patch: torch.Tensor, seed: int) -> torch.Tensor:
        """The augmented patch (plain tensor, same shape), drawn from `seed`."""
        self.spatial.set_random_state(seed=seed)
        self.intensity.set_random_state(seed=seed + 1)
        moved = convert_to_tensor(self.spatial(patch), track_meta=False)
        image = convert_to_tensor(self.intensity(moved[:-1]), track_meta=False)
        return torch.cat([image, (moved[-1:] > 0.5).to(image.dtype)])
