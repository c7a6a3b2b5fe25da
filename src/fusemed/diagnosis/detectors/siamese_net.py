"""The prototype's networks and patches (Alaverdyan et al., MedIA 2020; `siamese-ocsvm`): the patch
autoencoders (3D for the CPU default, 2D for the published preset), the siamese objective the shared
Lightning trainer optimises, and patch extraction around voxel centres.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class PatchAE(nn.Module):
    """Convolutional patch autoencoder: (B, C, p, p, p) -> code (B, L), reconstruction (B, C, p, p, p)."""

    def __init__(self, channels: int, patch: int, latent: int) -> None:
        super().__init__()
        self.c, self.p = channels, patch
        self.encoder = nn.Sequential(
            nn.Conv3d(channels, 8, 3, padding=1), nn.ELU(),
            nn.Conv3d(8, 16, 3, stride=2, padding=1), nn.ELU(),
            nn.Conv3d(16, 32, 3, stride=2, padding=1), nn.ELU(), nn.Flatten())
        with torch.no_grad():
            n = self.encoder(torch.zeros(1, channels, patch, patch, patch)).shape[1]
        self.to_code = nn.Linear(n, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, 256), nn.ELU(), nn.Linear(256, channels * patch ** 3))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decoder(z).view(-1, self.c, self.p, self.p, self.p)


class PatchAE2D(nn.Module):
    """The team's public siamese autoencoder on 2D patches: (B, C, p, p) -> code (B, L), reconstruction
    (B, C, p, p). Encoder: per width, conv 5x5 -> batch norm -> leaky ReLU -> max-pool 2, then a linear
    layer to the code; decoder: a linear layer back, then per level upsampling to the encoder's size ->
    conv 5x5 -> batch norm -> leaky ReLU, and a last conv 5x5 to the C channels."""

    def __init__(self, channels: int, patch: int, latent: int, widths: tuple[int, ...] = (4, 8)) -> None:
        super().__init__()
        sizes, layers, c = [patch], [], channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 5, padding=2), nn.BatchNorm2d(w), nn.LeakyReLU(), nn.MaxPool2d(2)]
            c = w
            sizes.append(sizes[-1] // 2)
        if sizes[-1] < 1:
            raise ValueError(f"a {patch} x {patch} patch is too small for {len(widths)} pooling levels")
        n = c * sizes[-1] ** 2
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.to_code = nn.Linear(n, latent)
        up: list[nn.Module] = [nn.Linear(latent, n), nn.Unflatten(1, (c, sizes[-1], sizes[-1]))]
        for k in reversed(range(len(widths))):
            up += [nn.Upsample(size=(sizes[k], sizes[k])), nn.Conv2d(c, widths[k], 5, padding=2),
                   nn.BatchNorm2d(widths[k]), nn.LeakyReLU()]
            c = widths[k]
        self.decoder = nn.Sequential(*up, nn.Conv2d(c, channels, 5, padding=2))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decoder(z)


class SiameseObjective(nn.Module):
    """The siamese loss as the shared module trains it: patches ``a`` and ``b`` (same place, two controls)
    through one autoencoder, L = MSE(x_a, x'_a) + MSE(x_b, x'_b) + weight * ||z_a - z_b||^2 / L."""

    def __init__(self, net: nn.Module, weight: float) -> None:
        super().__init__()
        self.net, self.weight = net, weight

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (za, ra), (zb, rb) = self.net(inputs["a"]), self.net(inputs["b"])
        return za, ra, zb, rb

    def loss(self, output: tuple[torch.Tensor, ...], target: dict[str, torch.Tensor]) -> torch.Tensor:
        za, ra, zb, rb = output
        pull = ((za - zb) ** 2).sum(1).mean() / za.shape[1]
        return nn.functional.mse_loss(ra, target["a"]) + nn.functional.mse_loss(rb, target["b"]) + self.weight * pull


def patch_shape(patch: int, dims: int) -> tuple[int, int, int]:
    """Voxel extent of a patch on the (D, H, W) grid: a cube, or (2D) a square in the plane of the first
    two axes (axial on the RAS common grid)."""
    return (patch, patch, patch) if dims == 3 else (patch, patch, 1)


def pad_for_patches(x: np.ndarray, patch: int | tuple[int, int, int]) -> np.ndarray:
    """Zero-pad x (C, D, H, W) by half a patch on each axis so that border voxels get full patches."""
    shape = (patch,) * 3 if isinstance(patch, int) else patch
    return np.pad(x, ((0, 0), *((s // 2, s // 2) for s in shape)))


def extract_patches(xp: np.ndarray, centres: np.ndarray, patch: int | tuple[int, int, int]) -> np.ndarray:
    """Patches (N, C, *shape) centred on `centres` (N, 3) of a volume padded by `pad_for_patches`."""
    shape = (patch,) * 3 if isinstance(patch, int) else patch
    i = centres[:, 0, None, None, None] + np.arange(shape[0])[None, :, None, None]
    j = centres[:, 1, None, None, None] + np.arange(shape[1])[None, None, :, None]
    k = centres[:, 2, None, None, None] + np.arange(shape[2])[None, None, None, :]
    return np.ascontiguousarray(xp[:, i, j, k].transpose(1, 0, 2, 3, 4))
