"""`ae`: reconstruction error of a convolutional autoencoder trained on healthy controls only.

Why: an autoencoder with a narrow bottleneck that has only ever seen healthy tissue learns to
reproduce healthy anatomy; a lesion it never saw is reconstructed as the healthy tissue around it,
so the residual |x - AE(x)| is large where the image departs from normal. This is the standard
unsupervised anomaly-detection recipe for brain MRI (Baur et al., "Autoencoders for unsupervised
anomaly segmentation in brain MR images: a comparative study", Medical Image Analysis 2021), and
unlike `zscore` it compares each place with a learned model of local healthy texture and context
rather than with the same voxel of other subjects, so it tolerates residual misregistration.

Choices (scaled down so it fits two CPU cores):
- MONAI `AutoEncoder` (3D, batch norm, no residual units), 3 stride-2 levels, then a 1-layer
  bottleneck of `bottleneck` channels: a 24^3 patch (48 mm at 2 mm) becomes 3^3 x 4 numbers, one
  cell per 16 mm, coarser than a 5-15 mm dysplasia, so a lesion cannot be carried through the
  code (Baur et al.: too wide a spatial bottleneck copies anomalies through).
- Training patches centred inside the controls' eroded foreground, Adam, `epochs` x
  `patches_per_epoch` patches, on the shared Lightning trainer (`fusemed.diagnosis.training`).
  Input channels = modalities; a missing modality is zero-filled and left out of the loss, and
  modality dropout (`modality_dropout`) teaches the net to reconstruct the present channels whatever
  the others are.
- Scoring: whole-volume `sliding_window_inference` (Gaussian blending, `overlap`), absent modalities
  zeroed at the input whatever the data holds, residual energy e = mean over PRESENT modalities
  (that some control had) of (x - x_hat)^2, then its local mean inside the head (normalised
  convolution with a Gaussian of `smooth` mm, sigma; the lesion scale, as for `zscore`). The base
  class subtracts the controls' median and thresholds at held-out controls' peak quantile.
Uncertainty map: the sampling variance of that local mean, (local variance of e) / n_eff, with n_eff
= (2 sqrt(pi) sigma)^3 the Gaussian kernel's effective number of voxels: high where the score rests
on a few extreme voxels (noise, an edge) rather than on a consistent excess, deterministic (so maps
round-trip exactly) and one pass, where MC dropout would need several inference passes.
State: the network's `state_dict` (tensors only) plus the support mask and the calibration.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import AutoEncoder
from torch import nn

from fusemed.diagnosis.detectors.unsupervised import UnsupervisedDetector
from fusemed.diagnosis.normative import smooth

log = logging.getLogger(__name__)


def _at_least(x: np.ndarray, size: int) -> np.ndarray:
    """x (C, D, H, W) itself (no copy), zero-padded at the end only where a side is under `size`."""
    short = [max(size - n, 0) for n in x.shape[1:]]
    return np.pad(x, [(0, 0)] + [(0, s) for s in short]) if any(short) else x


def _crops(x: np.ndarray, centres: np.ndarray, size: int) -> np.ndarray:
    """Patches (N, C, size^3) around `centres` (N, 3), shifted inward at the borders (no padded copy
    of the volume: 25 controls at 2 mm would need another ~0.7 GB)."""
    starts = np.clip(centres - size // 2, 0, np.asarray(x.shape[1:]) - size)
    return np.stack([x[:, a:a + size, b:b + size, c:c + size] for a, b, c in starts])


class MaskedReconstruction(nn.Module):
    """The autoencoder as the shared module trains it: mean squared error over the kept (present, not
    dropped) modalities only, whatever the others hold."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(inputs["x"]), present

    def loss(self, output: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        recon, keep = output
        mask = keep[:, :, None, None, None].to(recon.dtype)
        return (((recon - target) ** 2) * mask).sum() / (mask.sum() * target[0, 0].numel())


class ReconstructionDetector(UnsupervisedDetector):
    """Patch autoencoder (MONAI) trained on controls; anomaly = smoothed reconstruction error."""

    name = "ae"
    defaults: ClassVar[dict[str, Any]] = {
        **UnsupervisedDetector.common, "patch": 24, "channels": [16, 32, 64], "bottleneck": 4, "epochs": 8,
        "patches_per_epoch": 512, "batch_size": 16, "lr": 2e-3, "modality_dropout": 0.2, "overlap": 0.5,
        "smooth": 6.0,
    }

    def _network(self) -> AutoEncoder:
        p = self.params
        levels = len(p["channels"])
        if int(p["patch"]) % 2 ** levels:
            raise ValueError(f"ae: patch {p['patch']} must be a multiple of {2 ** levels} ({levels} stride-2 levels)")
        m = len(self.modalities)
        return AutoEncoder(spatial_dims=3, in_channels=m, out_channels=m, channels=list(p["channels"]),
                           strides=[2] * levels, inter_channels=[int(p["bottleneck"])], num_inter_units=0,
                           norm="batch")

    def _fit_model(self, prepared: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        p = self.params
        size, bs = int(p["patch"]), int(p["batch_size"])
        xs = [_at_least(x, size) for x, _, _ in prepared]  # absent modalities are zeros already (prepare)
        pres = np.stack([pr for _, pr, _ in prepared])
        fgs = [np.argwhere(self._inner(fg)) for _, _, fg in prepared]
        ok = np.flatnonzero([len(f) > 0 for f in fgs])
        if not len(ok):
            raise ValueError("ae: no control has foreground voxels inside the normative support")
        self.seen_ = pres.any(0)  # a modality no control has was never learnt: it cannot be scored
        torch.manual_seed(self.seed)
        self.net_ = self._network()
        k = int(p["patches_per_epoch"])

        def draw(rng: np.random.Generator) -> dict[str, Any]:
            """One epoch: `patches_per_epoch` patches of random controls, modalities dropped (zeroed)."""
            subj = ok[rng.integers(0, len(ok), k)]
            batch = np.empty((k, len(self.modalities), size, size, size), np.float32)
            for i in np.unique(subj):
                sel = subj == i
                centres = fgs[i][rng.integers(0, len(fgs[i]), int(sel.sum()))]
                batch[sel] = _crops(xs[i], centres, size)
            keep = torch.from_numpy(np.stack([self._drop(pres[i], rng) for i in subj]))
            x = torch.from_numpy(batch) * keep[:, :, None, None, None]
            return {"inputs": {"x": x}, "present": keep, "target": x}

        self.train_net(MaskedReconstruction(self.net_), draw, epochs=int(p["epochs"]), batch_size=bs,
                       lr=float(p["lr"]))
        self.net_.eval()

    @torch.no_grad()
    def reconstruct(self, x: np.ndarray, present: np.ndarray) -> np.ndarray:
        """The autoencoder's reconstruction (M, D, H, W) of x, absent modalities zeroed at the input."""
        xt = torch.from_numpy((x * present[:, None, None, None]).astype(np.float32))[None]
        roi = [min(int(self.params["patch"]), s) for s in x.shape[1:]]
        self.net_.eval()
        out = sliding_window_inference(xt, roi, 4, self.net_, overlap=float(self.params["overlap"]), mode="gaussian")
        return out[0].numpy()

    def _raw_score(self, x: np.ndarray, present: np.ndarray,
                   fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        use = present & self.seen_
        if not use.any():
            raise ValueError(f"ae: none of the present modalities was seen in controls {self.modalities}")
        resid = (x[use] - self.reconstruct(x, use)[use]) ** 2
        energy = resid.mean(0) * fg
        sigma = float(self.params["smooth"]) / self.spacing
        s_e, s_e2, s_fg = smooth(np.stack([energy, energy ** 2, fg.astype(np.float32)]), sigma)
        w = np.maximum(s_fg, 1e-3)
        mean = s_e / w
        n_eff = max((2 * np.sqrt(np.pi) * sigma) ** 3, 1.0)
        unc = np.maximum(s_e2 / w - mean ** 2, 0.0) / n_eff
        return mean * fg, unc * fg

    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        seen = {"seen": torch.from_numpy(self.seen_.astype(np.uint8))}
        return self._unsup_state(), {**tensors, **seen, **self._support_tensor()}

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self._load_unsup(meta, tensors)
        self.seen_ = tensors["seen"].numpy().astype(bool)
        self.net_ = self._network()
        self.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net_.eval()
