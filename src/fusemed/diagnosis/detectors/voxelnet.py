"""Supervised patch-based 3D segmentation detectors: early fusion (`unet`) and HeMIS (`hemis-unet`).

Both train on class-balanced patches (MONAI `RandCropByPosNegLabel`: as many patches centred on
lesion voxels as on background), augmented as nnU-Net does (`fusemed.diagnosis.augment`: mirroring,
rotation, scaling, noise; `augment: false` turns it off), with `DiceFocalLoss` against the extreme imbalance of small
lesions, modality dropout, on the shared Lightning trainer (`fusemed.diagnosis.training`: GPU, DDP,
mixed precision, resume), and predict with `sliding_window_inference`; MC dropout
(`fusemed.uncertainty.MCDropout`, several stochastic passes) gives the uncertainty map (variance of
the passes).

When the fit split has controls, each modality enters as two channels: its intensity and its
z-score against those controls at the same template location (`fusemed.diagnosis.normative`).
Trained on intensities alone, the nets learned "cortex" rather than "abnormal cortex" (every subject,
controls included, lit up along the cortical ribbon: the lesions are cortical and the signal is
subtle); the normative channel carries the deviation they have to learn from. Most lesion datasets
hold patients only: without controls the normative channels are skipped (one channel per modality,
as nnU-Net), recorded in `decisions_["normative"]`, and the threshold is calibrated on held-out
patients outside their lesions (`Detector.calibrate_threshold`).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet
from monai.transforms import RandCropByPosNegLabel
from monai.transforms.utils import map_binary_to_indices
from monai.utils import convert_to_tensor
from torch import nn

from fusemed.diagnosis.augment import PatchAugment
from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.detectors.base import Detector, mc_passes
from fusemed.diagnosis.normative import NormativeModel
from fusemed.diagnosis.training import SegmentationObjective
from fusemed.models.fusion.base import masked_moments

log = logging.getLogger(__name__)


class EarlyFusionNet(nn.Module):
    """Modalities stacked as channels plus one presence channel each:
    (B, M * per_mod, D, H, W) -> (B, 1, D, H, W), channels grouped by modality."""

    def __init__(self, n_mod: int, channels: tuple[int, ...], dropout: float, per_mod: int = 1) -> None:
        super().__init__()
        self.per_mod = per_mod
        self.unet = UNet(3, n_mod * (per_mod + 1), 1, channels=channels, strides=(2,) * (len(channels) - 1),
                         num_res_units=1, dropout=dropout)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        p = present[:, :, None, None, None].to(x.dtype).expand(-1, -1, *x.shape[2:])
        return self.unet(torch.cat([x * p.repeat_interleave(self.per_mod, 1), p], dim=1))


class HeMISNet(nn.Module):
    """HeMIS (Havaei et al., MICCAI 2016): one encoder per modality, fused by the mean and variance
    of the PRESENT modalities' feature maps, then a shared decoder. (B, M, D, H, W) -> (B, 1, D, H, W).

    The statistics are `fusemed.models.fusion.base.masked_moments`, the helper of the `hemis` fusion:
    an absent modality's feature map is replaced, not multiplied by 0, so its input values (NaN
    included) have no influence at all; variance is 0 with one modality present.
    """

    def __init__(self, n_mod: int, channels: tuple[int, ...], dropout: float, features: int = 8,
                 per_mod: int = 1) -> None:
        super().__init__()
        self.per_mod = per_mod
        self.encoders = nn.ModuleList(
            UNet(3, per_mod, features, channels=channels, strides=(2,) * (len(channels) - 1), num_res_units=1)
            for _ in range(n_mod))
        self.decoder = nn.Sequential(
            nn.Conv3d(2 * features, 16, 3, padding=1), nn.InstanceNorm3d(16), nn.PReLU(),
            nn.Dropout3d(dropout), nn.Conv3d(16, 1, 1))

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        k = self.per_mod
        feats = torch.stack([enc(x[:, i * k:(i + 1) * k]) for i, enc in enumerate(self.encoders)], dim=1)
        mean, var = masked_moments(feats, present)  # (B, F, D, H, W) each
        return self.decoder(torch.cat([mean, var], dim=1))


class VoxelNetDetector(Detector):
    """Shared training and inference of the supervised voxel detectors (not registered itself).

    The defaults are a CPU budget (24^3 patches at 2 mm, 20 epochs: a seed of the epilepsy benchmark's
    `unet` in minutes on one core, where 32^3 x 40 epochs took ~45 min with the cores shared); the GPU
    recipe in docs/diagnosis.md restores nnU-Net-sized training (larger patches, more epochs, 1 mm)."""

    defaults: ClassVar[dict[str, Any]] = {
        "patch": 24, "epochs": 20, "samples_per_case": 8, "batch_size": 8, "lr": 2e-3,
        "channels": [8, 16, 32, 64], "dropout": 0.1, "modality_dropout": 0.25, "mc_samples": 3,
        "overlap": 0.25, "threshold": 0.5, "control_quantile": 0.9, "normative_smooth": 4.0,
        "hard_negatives": 0.5, "augment": True,
    }

    @property
    def per_mod(self) -> int:
        """Channels per modality: intensity and normative z-score, or the intensity alone (no controls)."""
        return 1 if self.norm_ is None else 2

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _fit(self, cases: list[DetectionCase]) -> None:
        p = self.params
        prepared = [self.prepare(c) for c in cases]
        controls = [prep for prep, c in zip(prepared, cases, strict=True) if not c.is_patient]
        self.norm_ = None
        if controls:
            support = np.mean([fg for _, _, fg in controls], axis=0) >= 0.9
            self.norm_ = NormativeModel.fit(controls, support, float(p["normative_smooth"]) / self.spacing)
            why = f"z-scores against the fit split's {len(controls)} controls, beside the intensities"
        else:
            why = (f"the fit split has no controls ({len(cases)} patients): normative z-score channels "
                   f"skipped, the net reads the intensities alone")
            log.info("%s: %s", self.name, why)
        self.decisions_.update(normative=self.norm_ is not None, normative_reason=why)
        data = []
        for c, (x, present, fg) in zip(cases, prepared, strict=True):
            y = self.target(c)
            feats = self._features(x, present)
            fg_idx, bg_idx = map_binary_to_indices(y[None], fg[None])  # once, not every epoch
            data.append((feats, present, y, fg_idx, self._with_hard_negatives(bg_idx, feats)))
        del prepared, controls
        self.net_ = self._build()
        patch = [min(p["patch"], s) for s in self.grid_.shape]
        crops = {has_lesion: RandCropByPosNegLabel(patch, pos=float(has_lesion), neg=2.0, allow_smaller=True,
                                                   num_samples=p["samples_per_case"])  # nnU-Net's 1/3 lesion
                 for has_lesion in (True, False)}  # controls: background patches only
        augment = PatchAugment() if p["augment"] else None

        def draw(rng: np.random.Generator) -> dict[str, Any]:
            """One epoch: `samples_per_case` class-balanced patches per subject, modalities dropped."""
            xs, ps, ys = [], [], []
            for x, present, y, fg_idx, bg_idx in data:
                crop = crops[len(fg_idx) > 0]
                crop.set_random_state(seed=int(rng.integers(2 ** 31)))
                img = torch.from_numpy(np.concatenate([x, y[None].astype(x.dtype)]))
                with warnings.catch_warnings():  # MONAI warns on every control ("Num foregrounds 0"): expected
                    warnings.filterwarnings("ignore", message="Num foregrounds 0")
                    patches = crop(img, label=torch.from_numpy(y[None]), fg_indices=fg_idx, bg_indices=bg_idx)
                for patch_t in patches:
                    t = convert_to_tensor(patch_t, track_meta=False)  # plain tensors for the loader
                    if augment is not None:
                        t = augment(t, int(rng.integers(2 ** 31 - 1)))
                    xs.append(t[:-1].float())
                    ys.append(t[-1:].float())
                    ps.append(torch.from_numpy(self._drop(present, rng)))
            return {"inputs": {"x": torch.stack(xs)}, "present": torch.stack(ps), "target": torch.stack(ys)}

        # AdamW with nnU-Net's polynomial decay (power 0.9) over the epochs
        self.train_net(SegmentationObjective(self.net_), draw, epochs=int(p["epochs"]),
                       batch_size=int(p["batch_size"]), lr=float(p["lr"]), weight_decay=1e-4, lr_power=0.9)
        self.net_.eval()
        self.threshold_ = float(p["threshold"])

    def calibrate(self, cases: list[DetectionCase]) -> None:
        """Set the map threshold on held-out subjects: the `control_quantile` quantile of their
        controls' peak probability on their own grids (`Detector.calibrate_threshold`), so about that
        share of controls shows no cluster (MELD's specificity); on a patients-only cohort, of their
        patients' peaks outside the lesion (that share of patients without a false-positive cluster).
        Training on lesion-centred patches over-represents lesions, so the raw 0.5 of the sigmoid is
        not an operating point; without any held-out subject it stays `threshold`."""
        self._check()
        self.calibrate_threshold(cases, float(self.params["control_quantile"]))

    def _with_hard_negatives(self, bg_idx: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """Background indices where normal tissue deviates from controls (|z| > 2 in any modality;
        without controls: from the subject's own foreground, |normalised intensity| > 2) are repeated
        so that about `hard_negatives` of the background patches are centred there: those are the
        places a net mistakes for lesions (without it, controls peaked at p ~ 0.99)."""
        share = float(self.params["hard_negatives"])
        z = np.abs(feats[self.per_mod - 1::self.per_mod].astype(np.float32)).max(0).ravel()
        hard = bg_idx[z[bg_idx] > 2]  # bg_idx holds no lesion voxel (map_binary_to_indices)
        if share <= 0 or not len(hard) or not len(bg_idx):
            return bg_idx
        reps = int(np.clip(round(share / (1 - share) * len(bg_idx) / len(hard)), 1, 50))
        return np.concatenate([bg_idx, np.tile(hard, reps)])

    def _features(self, x: np.ndarray, present: np.ndarray) -> np.ndarray:
        """(M * per_mod, D, H, W) float16: per modality its intensity and its normative z-score
        (clipped), or the intensity alone without a normative model."""
        if self.norm_ is None:
            return x.astype(np.float16)
        z = np.clip(self.norm_.z(x, present), -8, 8)
        return np.stack([x, z], axis=1).reshape(-1, *x.shape[1:]).astype(np.float16)

    @torch.no_grad()
    def _predict_grid(self, x: np.ndarray, present: np.ndarray,
                      fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        xt = torch.from_numpy(self._features(x, present).astype(np.float32))[None]
        pt = torch.from_numpy(present)[None]
        roi = [min(p["patch"], s) for s in self.grid_.shape]

        passes = mc_passes(self.net_, int(p["mc_samples"]), self.seed)

        def run(patch: torch.Tensor) -> torch.Tensor:  # (B, C, d, h, w) -> (B, K, d, h, w): passes as channels
            return torch.sigmoid(passes(patch, pt.expand(patch.shape[0], -1)))[:, :, 0].transpose(0, 1)

        stack = sliding_window_inference(xt, roi, 4, run, overlap=p["overlap"])[0].numpy()
        return stack.mean(0), stack.var(0)

    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        norm = {} if self.norm_ is None else self.norm_.tensors()
        return {}, {**{f"net.{k}": v for k, v in self.net_.state_dict().items()}, **norm}

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.norm_ = NormativeModel.from_tensors(tensors) if "normative.mean" in tensors else None
        self.net_ = self._build()
        self.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net_.eval()


class UNetDetector(VoxelNetDetector):
    """`unet`: early fusion (channels + presence channels), nnU-Net-like but runs with zero-filled gaps."""

    name = "unet"

    def _build(self) -> nn.Module:
        return EarlyFusionNet(len(self.modalities), tuple(self.params["channels"]), self.params["dropout"],
                              per_mod=self.per_mod)


class HeMISDetector(VoxelNetDetector):
    """`hemis-unet`: per-modality encoders fused by HeMIS statistics; any modality may be missing."""

    name = "hemis-unet"
    defaults: ClassVar[dict[str, Any]] = {**VoxelNetDetector.defaults, "channels": [8, 16, 32]}

    def _build(self) -> nn.Module:
        return HeMISNet(len(self.modalities), tuple(self.params["channels"]), self.params["dropout"],
                        per_mod=self.per_mod)
