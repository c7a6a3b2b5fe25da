"""Detectors trained on controls only: the shared score -> map calibration and the `zscore` baseline.

An unsupervised detector yields a raw anomaly score s(v) >= 0 per voxel. Its threshold t is set on
controls held out from fitting: the `control_quantile` quantile of their per-subject peak score (the
highest threshold at which they still show a cluster of `min_size`, `cluster_peak`), so
about that share of controls shows no cluster at all (the MELD specificity definition). The map
written out is s / (s + t): monotone in s, never saturating, so clusters keep distinct peaks for
ranking. The map is then resampled to each subject's grid, which moves peaks and cluster sizes, so the
operating threshold on the map is set again where it is applied: the same quantile of the held-out
controls' map peaks on their own grids (`Detector.calibrate_threshold`; about 0.5).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import ndimage

from fusemed.diagnosis.clusters import cluster_peak
from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.detectors.base import Detector
from fusemed.diagnosis.normative import NormativeModel

log = logging.getLogger(__name__)


class UnsupervisedDetector(Detector):
    """Base for controls-only detectors: subclasses implement `_fit_model` and `_raw_score`."""

    supervised: ClassVar[bool] = False
    common: ClassVar[dict[str, Any]] = {"holdout": 0.25, "control_quantile": 0.9, "erode": 1, "support": 0.9}

    def _fit(self, cases: list[DetectionCase]) -> None:
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(cases))
        n_hold = int(round(self.params["holdout"] * len(cases))) if len(cases) >= 4 else 0
        hold = [cases[i] for i in order[:n_hold]]
        fit = [cases[i] for i in order[n_hold:]]
        prepared = [self.prepare(c) for c in fit]
        # normative support: voxels inside the foreground of most fitting controls; outside it a
        # per-voxel model has no data (sd ~ 0) and would flag every head-boundary voxel
        share = np.mean([fg for _, _, fg in prepared], axis=0)
        self.support_ = share >= self.params["support"]
        self._fit_model(prepared)
        held = [self.prepare(c) for c in hold] if hold else prepared  # tiny cohorts: in-sample
        raws = [self._masked(self._raw_score(x, p, fg)[0], fg) for x, p, fg in held]
        vals = np.concatenate([r[self._inner(fg)] for r, (_, _, fg) in zip(raws, held, strict=True)])
        self.offset_ = float(np.median(vals)) if vals.size else 0.0
        peaks = [cluster_peak(np.maximum(r - self.offset_, 0) * self._inner(fg), self.min_voxels)
                 for r, (_, _, fg) in zip(raws, held, strict=True)]
        raw = float(np.quantile(peaks, self.params["control_quantile"]))
        if raw < 1e-6:
            self.warn(f"held-out controls' raw peak quantile {raw:.3g} is below 1e-6 (no anomaly in controls); "
                      f"the map scale uses 1e-6")
        self.raw_threshold_ = max(raw, 1e-6)
        self.threshold_ = 0.5
        log.info("%s: offset %.4g, raw threshold %.4g from %d held-out controls", self.name, self.offset_,
                 self.raw_threshold_, len(held))
        self.calibrate_threshold(hold or fit, float(self.params["control_quantile"]))

    def _inner(self, fg: np.ndarray) -> np.ndarray:
        """Where scores count: the subject's eroded foreground within the controls' support."""
        e = int(self.params["erode"])
        inner = ndimage.binary_erosion(fg, iterations=e) if e else fg
        support = getattr(self, "support_", None)
        return inner & support if support is not None else inner

    @staticmethod
    def _masked(score: np.ndarray, fg: np.ndarray) -> np.ndarray:
        return np.where(fg, score, 0.0)

    def _predict_grid(self, x: np.ndarray, present: np.ndarray,
                      fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw, unc = self._raw_score(x, present, fg)
        s = np.maximum(raw - self.offset_, 0.0) * self._inner(fg)
        return (s / (s + self.raw_threshold_)).astype(np.float32), unc.astype(np.float32)

    def _fit_model(self, prepared: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        raise NotImplementedError

    def _raw_score(self, x: np.ndarray, present: np.ndarray,
                   fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw score (D, H, W), uncertainty (D, H, W)) on the common grid."""
        raise NotImplementedError

    def _unsup_state(self) -> dict:
        return {"offset": self.offset_, "raw_threshold": self.raw_threshold_}

    def _support_tensor(self) -> dict[str, torch.Tensor]:
        return {"support": torch.from_numpy(self.support_.astype(np.uint8))}

    def _load_unsup(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.offset_, self.raw_threshold_ = meta["offset"], meta["raw_threshold"]
        self.support_ = tensors["support"].numpy().astype(bool)


class ZScoreDetector(UnsupervisedDetector):
    """`zscore`: per-voxel normative model (mean, sd of each modality over controls on the common grid).

    Raw score: root mean square over PRESENT modalities of the voxel z-scores of images smoothed by a
    Gaussian of `smooth` mm (sigma; 6 mm by default, the scale of a dysplasia: smoothing at the lesion
    scale is what lifts a subtle lesion above the voxel noise, as in voxel-based morphometry).
    Uncertainty: the sampling variance of those z-scores given n controls, (1 + z^2 / 2) / n
    (standard error of a standardised value), averaged over modalities: high where few controls
    inform the voxel or the deviation is extreme.
    """

    name = "zscore"
    defaults: ClassVar[dict[str, Any]] = {**UnsupervisedDetector.common, "smooth": 6.0}

    def _fit_model(self, prepared: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self.norm_ = NormativeModel.fit(prepared, self.support_, float(self.params["smooth"]) / self.spacing)

    def _raw_score(self, x: np.ndarray, present: np.ndarray,
                   fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        use = self.norm_.usable(present)
        if not use.any():
            raise ValueError(f"zscore: none of the present modalities was seen in controls {self.modalities}")
        z = self.norm_.z(x, present)[use]
        n = self.norm_.count[use][:, None, None, None]
        unc = ((1 + z ** 2 / 2) / np.maximum(n, 1)).mean(0)
        return np.sqrt((z ** 2).mean(0)), unc

    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return self._unsup_state(), {**self.norm_.tensors(), **self._support_tensor()}

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self._load_unsup(meta, tensors)
        self.norm_ = NormativeModel.from_tensors(tensors)
