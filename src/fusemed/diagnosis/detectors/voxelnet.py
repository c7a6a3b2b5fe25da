"""Supervised patch-based 3D segmentation detectors: early fusion (`unet`) and HeMIS (`hemis-unet`).

Both train on class-balanced patches (MONAI `RandCropByPosNegLabel`: as many patches centred on
lesion voxels as on background), with `DiceFocalLoss` against the extreme imbalance of small
lesions, modality dropout, and predict with `sliding_window_inference`; MC dropout (several
stochastic passes) gives the uncertainty map (variance of the passes).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceFocalLoss
from monai.networks.nets import UNet
from monai.transforms import RandCropByPosNegLabel
from monai.transforms.utils import map_binary_to_indices
from torch import nn

from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.detectors.base import Detector

log = logging.getLogger(__name__)


class EarlyFusionNet(nn.Module):
    """Modalities stacked as channels plus one presence channel each: (B, M, D, H, W) -> (B, 1, D, H, W)."""

    def __init__(self, n_mod: int, channels: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.unet = UNet(3, 2 * n_mod, 1, channels=channels, strides=(2,) * (len(channels) - 1),
                         num_res_units=1, dropout=dropout)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        p = present[:, :, None, None, None].to(x.dtype).expand_as(x)
        return self.unet(torch.cat([x * p, p], dim=1))


class HeMISNet(nn.Module):
    """HeMIS (Havaei et al., MICCAI 2016): one encoder per modality, fused by the mean and variance
    of the PRESENT modalities' feature maps, then a shared decoder. (B, M, D, H, W) -> (B, 1, D, H, W).

    An absent modality's encoder output is excluded from the statistics, so its input values have
    no influence at all; variance is 0 with one modality present.
    """

    def __init__(self, n_mod: int, channels: tuple[int, ...], dropout: float, features: int = 8) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(
            UNet(3, 1, features, channels=channels, strides=(2,) * (len(channels) - 1), num_res_units=1)
            for _ in range(n_mod))
        self.decoder = nn.Sequential(
            nn.Conv3d(2 * features, 16, 3, padding=1), nn.InstanceNorm3d(16), nn.PReLU(),
            nn.Dropout3d(dropout), nn.Conv3d(16, 1, 1))

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([enc(x[:, i:i + 1]) for i, enc in enumerate(self.encoders)], dim=1)  # (B,M,F,...)
        w = present.to(x.dtype)[:, :, None, None, None, None]
        n = w.sum(1).clamp(min=1.0)
        mean = (feats * w).sum(1) / n
        var = (((feats - mean[:, None]) ** 2) * w).sum(1) / n
        return self.decoder(torch.cat([mean, var], dim=1))


class VoxelNetDetector(Detector):
    """Shared training and inference of the supervised voxel detectors (not registered itself)."""

    defaults: ClassVar[dict[str, Any]] = {
        "patch": 32, "epochs": 30, "samples_per_case": 4, "batch_size": 8, "lr": 2e-3,
        "channels": [8, 16, 32, 64], "dropout": 0.1, "modality_dropout": 0.25, "mc_samples": 3,
        "overlap": 0.25, "threshold": 0.5,
    }

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _fit(self, cases: list[DetectionCase]) -> None:
        p = self.params
        rng = np.random.default_rng(self.seed)
        data = []
        for c in cases:
            x, present, fg = self.prepare(c)
            y = self.target(c)
            fg_idx, bg_idx = map_binary_to_indices(y[None], fg[None])  # once, not every epoch
            data.append((x, present, y, fg_idx, bg_idx))
        self.net_ = self._build()
        opt = torch.optim.AdamW(self.net_.parameters(), lr=p["lr"], weight_decay=1e-4)
        loss_fn = DiceFocalLoss(sigmoid=True, gamma=2.0, lambda_dice=1.0, lambda_focal=1.0)
        patch = [min(p["patch"], s) for s in self.grid_.shape]
        crop = RandCropByPosNegLabel(patch, pos=1.0, neg=1.0, num_samples=p["samples_per_case"],
                                     allow_smaller=True)
        crop.set_random_state(seed=self.seed)
        self.net_.train()
        for epoch in range(p["epochs"]):
            xs, ps, ys = [], [], []
            for x, present, y, fg_idx, bg_idx in data:
                img = torch.from_numpy(np.concatenate([x, y[None].astype(np.float32)]))
                for patch_t in crop(img, label=torch.from_numpy(y[None]), fg_indices=fg_idx, bg_indices=bg_idx):
                    t = torch.as_tensor(patch_t)
                    xs.append(t[:-1])
                    ys.append(t[-1:])
                    ps.append(torch.from_numpy(self._drop(present, rng)))
            order = rng.permutation(len(xs))
            total = 0.0
            for s in range(0, len(order), p["batch_size"]):
                idx = order[s:s + p["batch_size"]]
                xb, pb = torch.stack([xs[i] for i in idx]), torch.stack([ps[i] for i in idx])
                yb = torch.stack([ys[i] for i in idx])
                opt.zero_grad()
                loss = loss_fn(self.net_(xb, pb), yb)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            log.info("%s epoch %d loss %.4f", self.name, epoch, total / max(len(order), 1))
        self.net_.eval()
        self.threshold_ = float(p["threshold"])

    def _drop(self, present: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Modality dropout: drop each present modality with probability `modality_dropout`, keep >= 1."""
        keep = present & (rng.random(present.shape[0]) >= self.params["modality_dropout"])
        if not keep.any():
            keep = np.zeros_like(present)
            keep[rng.choice(np.flatnonzero(present))] = True
        return keep

    @torch.no_grad()
    def _predict_grid(self, x: np.ndarray, present: np.ndarray,
                      fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        xt, pt = torch.from_numpy(x)[None], torch.from_numpy(present)[None]
        roi = [min(p["patch"], s) for s in self.grid_.shape]

        def run(patch: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.net_(patch, pt.expand(patch.shape[0], -1)))

        n = max(1, int(p["mc_samples"]))
        for m in self.net_.modules():  # MC dropout: dropout stays stochastic, norms stay in eval mode
            if isinstance(m, nn.Dropout | nn.Dropout3d):
                m.train(n > 1)
        outs = [sliding_window_inference(xt, roi, 4, run, overlap=p["overlap"])[0, 0].numpy()
                for _ in range(n)]
        self.net_.eval()
        stack = np.stack(outs)
        return stack.mean(0), stack.var(0)

    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return {}, dict(self.net_.state_dict())

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.net_ = self._build()
        self.net_.load_state_dict(tensors)
        self.net_.eval()


class UNetDetector(VoxelNetDetector):
    """`unet`: early fusion (channels + presence channels), nnU-Net-like but runs with zero-filled gaps."""

    name = "unet"

    def _build(self) -> nn.Module:
        return EarlyFusionNet(len(self.modalities), tuple(self.params["channels"]), self.params["dropout"])


class HeMISDetector(VoxelNetDetector):
    """`hemis-unet`: per-modality encoders fused by HeMIS statistics; any modality may be missing."""

    name = "hemis-unet"
    defaults: ClassVar[dict[str, Any]] = {**VoxelNetDetector.defaults, "channels": [8, 16, 32]}

    def _build(self) -> nn.Module:
        return HeMISNet(len(self.modalities), tuple(self.params["channels"]), self.params["dropout"])
