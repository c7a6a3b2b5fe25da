"""`siamese-ocsvm`: scaled-down re-implementation of the team prototype (Alaverdyan et al., MedIA 2020).

What the paper does, and what we keep:
1. Patches of T1 + FLAIR (PET optional: pass it in `modalities`) from HEALTHY CONTROLS only, all
   registered to one space (here: MNI152, each subject affinely registered, on a common grid).
2. A siamese network of convolutional autoencoders: two patches at the SAME location in two
   DIFFERENT controls go through the same encoder; the loss pulls their latent codes together
   (||z_a - z_b||^2) while each reconstruction error regularises the codes so they stay informative:
   L = MSE(x_a, x'_a) + MSE(x_b, x'_b) + lambda * ||z_a - z_b||^2.
   The autoencoder trains on the shared Lightning trainer (`fusemed.diagnosis.training`).
3. Latent codes feed a one-class SVM per location (nu ~ 0.03, RBF kernel); its negated decision
   function is the anomaly score; the map is clustered and clusters ranked by score.

Scaling choices (documented deviations, so it runs on 2 CPU cores):
- 3D patches of `patch`^3 voxels on the 2 mm grid (9^3 = 18 mm, the field of view of the paper's
  2D 15 x 15 patches at ~1 mm) and a 16-d latent code, as in the team's later public code.
- One OC-SVM per PARCEL (cubes of `parcel`^3 voxels, 20 mm at 2 mm) instead of per voxel, trained
  on codes sampled at many voxels of the parcel across controls: a per-voxel SVM with ~75 samples
  is replaced by a per-region SVM with ~150 samples. The encoder is slimmer (8-16-32 channels).
- Codes are computed on a lattice of stride `stride` and the score map filled back by nearest
  neighbour, then smoothed by a Gaussian of `smooth` mm (sigma 6 mm, the lesion scale, as for `zscore`;
  the paper clusters the raw map).
- The SVMs are kept as their support vectors, dual coefficients, intercept and gamma (the
  decision function is re-evaluated in numpy; nothing is pickled).
Uncertainty map: the local variance of the anomaly map in a 3^3 neighbourhood (spatial instability
of the score), since a single SVM gives no predictive distribution.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import ndimage
from sklearn.svm import OneClassSVM
from torch import nn

from fusemed.diagnosis.detectors.unsupervised import UnsupervisedDetector

log = logging.getLogger(__name__)


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


class SiameseObjective(nn.Module):
    """The siamese loss as the shared module trains it: patches ``a`` and ``b`` (same place, two controls)
    through one autoencoder, L = MSE(x_a, x'_a) + MSE(x_b, x'_b) + weight * ||z_a - z_b||^2 / L."""

    def __init__(self, net: PatchAE, weight: float) -> None:
        super().__init__()
        self.net, self.weight = net, weight

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (za, ra), (zb, rb) = self.net(inputs["a"]), self.net(inputs["b"])
        return za, ra, zb, rb

    def loss(self, output: tuple[torch.Tensor, ...], target: dict[str, torch.Tensor]) -> torch.Tensor:
        za, ra, zb, rb = output
        pull = ((za - zb) ** 2).sum(1).mean() / za.shape[1]
        return nn.functional.mse_loss(ra, target["a"]) + nn.functional.mse_loss(rb, target["b"]) + self.weight * pull


def pad_for_patches(x: np.ndarray, patch: int) -> np.ndarray:
    """Zero-pad x (C, D, H, W) by patch // 2 so that border voxels get full patches."""
    h = patch // 2
    return np.pad(x, ((0, 0), (h, h), (h, h), (h, h)))


def extract_patches(xp: np.ndarray, centres: np.ndarray, patch: int) -> np.ndarray:
    """Patches (N, C, p, p, p) centred on `centres` (N, 3) of a volume padded by `pad_for_patches`."""
    off = np.arange(patch)
    i = centres[:, 0, None, None, None] + off[None, :, None, None]
    j = centres[:, 1, None, None, None] + off[None, None, :, None]
    k = centres[:, 2, None, None, None] + off[None, None, None, :]
    return np.ascontiguousarray(xp[:, i, j, k].transpose(1, 0, 2, 3, 4))


class SiameseOCSVMDetector(UnsupervisedDetector):
    """Siamese patch autoencoder + one OC-SVM per parcel, trained on controls only."""

    name = "siamese-ocsvm"
    default_modalities: ClassVar[tuple[str, ...]] = ("t1", "flair")
    defaults: ClassVar[dict[str, Any]] = {
        **UnsupervisedDetector.common, "patch": 9, "latent": 16, "epochs": 10, "pairs_per_epoch": 2048,
        "batch_size": 128, "lr": 1e-3, "siamese_weight": 1.0, "nu": 0.03, "parcel": 10,
        "samples_per_parcel": 150, "stride": 2, "smooth": 6.0,
    }

    def _codes(self, xp: np.ndarray, centres: np.ndarray, standardise: bool = True) -> np.ndarray:
        """Latent codes (N, L) of the patches of padded volume `xp` at `centres` (N, 3)."""
        out = []
        with torch.no_grad():
            for s in range(0, len(centres), 4096):
                patches = torch.from_numpy(extract_patches(xp, centres[s:s + 4096], self.params["patch"]))
                out.append(self.net_.encode(patches).numpy())
        z = np.concatenate(out) if out else np.zeros((0, self.params["latent"]), np.float32)
        return (z - self.code_mean_) / self.code_sd_ if standardise else z

    def _parcel_of(self, centres: np.ndarray) -> np.ndarray:
        p = self.params["parcel"]
        n = [int(np.ceil(s / p)) for s in self.grid_.shape]
        q = centres // p
        return (q[:, 0] * n[1] + q[:, 1]) * n[2] + q[:, 2]

    def _fit_model(self, prepared: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        p = self.params
        rng = np.random.default_rng(self.seed)
        xs = [pad_for_patches(x * pr[:, None, None, None], p["patch"]) for x, pr, _ in prepared]
        fgs = [np.argwhere(self._inner(fg)) for _, _, fg in prepared]
        self.net_ = PatchAE(len(self.modalities), p["patch"], p["latent"])
        n, k = len(xs), p["pairs_per_epoch"]
        shape = (k, len(self.modalities), p["patch"], p["patch"], p["patch"])

        def draw(rng: np.random.Generator) -> dict[str, Any]:
            """One epoch of pairs: pair k is a random location of subject a[k], and the same location
            in another subject b[k]."""
            a = rng.integers(0, n, k)
            b = (a + rng.integers(1, max(n, 2), k)) % n if n > 1 else a
            centres = np.stack([fgs[i][rng.integers(len(fgs[i]))] for i in a])
            xa, xb = np.empty(shape, np.float32), np.empty(shape, np.float32)
            for i in range(n):
                xa[a == i] = extract_patches(xs[i], centres[a == i], p["patch"])
                xb[b == i] = extract_patches(xs[i], centres[b == i], p["patch"])
            pair = {"a": torch.from_numpy(xa), "b": torch.from_numpy(xb)}
            return {"inputs": pair, "present": torch.ones(k, 1, dtype=torch.bool), "target": pair}

        self.train_net(SiameseObjective(self.net_, float(p["siamese_weight"])), draw, epochs=int(p["epochs"]),
                       batch_size=int(p["batch_size"]), lr=float(p["lr"]))
        self.net_.eval()
        self._fit_svms(xs, fgs, rng)

    def _fit_svms(self, xs: list[np.ndarray], fgs: list[np.ndarray], rng: np.random.Generator) -> None:
        p = self.params
        n_parcels = len(np.unique(self._parcel_of(fgs[0])))  # parcels inside the head, not the whole box
        per_subject = int(np.ceil(p["samples_per_parcel"] * n_parcels / max(len(xs), 1)))
        codes, parcels = [], []
        for x, fg in zip(xs, fgs, strict=True):
            c = fg[rng.choice(len(fg), size=min(per_subject, len(fg)), replace=False)]
            codes.append(self._codes(x, c, standardise=False))
            parcels.append(self._parcel_of(c))
        z, par = np.concatenate(codes), np.concatenate(parcels)
        self.code_mean_, self.code_sd_ = z.mean(0), z.std(0) + 1e-6
        z = (z - self.code_mean_) / self.code_sd_
        svs, coefs, icpts, gammas, ids = [], [], [], [], []
        for q in np.unique(par):
            zq = z[par == q]
            if len(zq) > p["samples_per_parcel"]:
                zq = zq[rng.choice(len(zq), p["samples_per_parcel"], replace=False)]
            if len(zq) < 20:
                continue
            svm = OneClassSVM(nu=p["nu"], kernel="rbf", gamma="scale").fit(zq)
            svs.append(svm.support_vectors_)
            coefs.append(svm.dual_coef_[0])
            icpts.append(float(svm.intercept_[0]))
            gammas.append(float(svm._gamma))
            ids.append(int(q))
        sub = z[rng.choice(len(z), min(len(z), 2000), replace=False)]
        global_svm = OneClassSVM(nu=p["nu"], kernel="rbf", gamma="scale").fit(sub)
        width = max(len(s) for s in [*svs, global_svm.support_vectors_])
        self.sv_ = np.zeros((len(svs) + 1, width, z.shape[1]), np.float32)
        self.coef_ = np.zeros((len(svs) + 1, width), np.float32)
        for i, (s, c) in enumerate([*zip(svs, coefs, strict=True),
                                    (global_svm.support_vectors_, global_svm.dual_coef_[0])]):
            self.sv_[i, :len(s)], self.coef_[i, :len(c)] = s, c
        self.intercept_ = np.array([*icpts, float(global_svm.intercept_[0])], np.float32)
        self.gamma_ = np.array([*gammas, float(global_svm._gamma)], np.float32)
        self.parcel_ids_ = np.array(ids, np.int64)
        log.info("siamese-ocsvm: %d parcel SVMs (+1 global fallback), %d codes", len(ids), len(z))

    def decision(self, z: np.ndarray, parcels: np.ndarray) -> np.ndarray:
        """OC-SVM decision function of codes z (N, L) in their parcels (N,) (global SVM where none)."""
        slot = np.searchsorted(self.parcel_ids_, parcels)
        slot = np.clip(slot, 0, max(len(self.parcel_ids_) - 1, 0))
        ok = (len(self.parcel_ids_) > 0) & (self.parcel_ids_[slot] == parcels) if len(self.parcel_ids_) \
            else np.zeros(len(parcels), bool)
        slot = np.where(ok, slot, len(self.intercept_) - 1)
        out = np.empty(len(z), np.float32)
        for s in np.unique(slot):
            idx = slot == s
            d2 = ((z[idx, None, :] - self.sv_[s][None]) ** 2).sum(-1)
            out[idx] = (np.exp(-self.gamma_[s] * d2) * self.coef_[s][None]).sum(1) + self.intercept_[s]
        return out

    def _raw_score(self, x: np.ndarray, present: np.ndarray,
                   fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        st = int(self.params["stride"])
        xp = pad_for_patches(x * present[:, None, None, None], self.params["patch"])
        lattice = np.zeros(fg.shape, bool)
        lattice[::st, ::st, ::st] = True
        centres = np.argwhere(lattice & fg)
        score = np.zeros(fg.shape, np.float32)
        if len(centres):
            z = self._codes(xp, centres)
            score[tuple(centres.T)] = -self.decision(z, self._parcel_of(centres))
        small = score[::st, ::st, ::st]
        full = np.repeat(np.repeat(np.repeat(small, st, 0), st, 1), st, 2)[:fg.shape[0], :fg.shape[1],
                                                                           :fg.shape[2]]
        full = ndimage.gaussian_filter(full, float(self.params["smooth"]) / self.spacing)
        mean = ndimage.uniform_filter(full, 3)
        unc = np.maximum(ndimage.uniform_filter(full ** 2, 3) - mean ** 2, 0)
        return full, unc

    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        arrays = {"sv": self.sv_, "coef": self.coef_, "intercept": self.intercept_, "gamma": self.gamma_,
                  "parcel_ids": self.parcel_ids_, "code_mean": self.code_mean_.astype(np.float32),
                  "code_sd": self.code_sd_.astype(np.float32)}
        tensors = {f"svm.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        tensors.update({f"net.{k}": v for k, v in self.net_.state_dict().items()})
        tensors.update(self._support_tensor())
        return self._unsup_state(), tensors

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self._load_unsup(meta, tensors)
        self.net_ = PatchAE(len(self.modalities), self.params["patch"], self.params["latent"])
        self.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net_.eval()
        for k in ("sv", "coef", "intercept", "gamma", "parcel_ids", "code_mean", "code_sd"):
            setattr(self, f"{k}_", tensors[f"svm.{k}"].numpy())
