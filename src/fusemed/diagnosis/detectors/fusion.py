"""`volume-surface`: a volume detector and `surface-gnn` fused into one voxel map, either view may be missing.

Each view is a registered detector built, fitted and run through its own public API
(`get_detector(name)(...)`, `fit`, `predict`, `save` / `load`); nothing of their training is copied.

Why the output is a volume map: the lesion truth (MRI-negative cases included) is a voxel mask, the
existing clusters, threshold calibration, FROC and metrics then apply unchanged, and the volume sees
what the surface cannot (a transmantle extension off the ribbon). The surface view is therefore
splatted into the volume (`fusemed.diagnosis.projection`: fsaverage5 mid-thickness vertices, in
template space, onto the common-grid voxels near them, then back to the subject through the same
registration the volume detectors use).

Fusion rule (stacking, fitted on patients and controls of the fit split held out from both views'
training, never on the calibration or test split): one logistic regression per missing pattern on
per-voxel features, `both` = [logit p_volume, logit p_surface, their MC-dropout SDs, ribbon flag],
`volume` = its two, `surface` = its two (ribbon voxels only). A subject with one view gets that
view's own calibrated model (not the joint one with a zero-filled gap). Cluster confidence: a second
logistic regression on held-out clusters (overlapping a lesion or not) from the cluster's peak and
the mean MC-dropout SD of each view inside it, with the presence flags. Both are saved as JSON.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback

from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.detectors.base import DetectionMaps, Detector, get_detector
from fusemed.diagnosis.projection import Splat, mid_surface
from fusemed.diagnosis.stacking import Logistic, logit

log = logging.getLogger(__name__)

#: hyperparameters a user gives once (CLI flags) and each view receives when it has them
SHARED = ("epochs", "lr", "batch_size", "modality_dropout")
PATTERNS = {"both": ["logit_volume", "logit_surface", "sd_volume", "sd_surface", "ribbon"],
            "volume": ["logit_volume", "sd_volume"], "surface": ["logit_surface", "sd_surface"]}
CONFIDENCE = ["logit_peak", "sd_volume", "sd_surface", "has_volume", "has_surface"]


@dataclass
class FusedMaps(DetectionMaps):
    """`DetectionMaps` plus each present view's MC-dropout SD on the output grid (for cluster confidence)."""

    view_sd: dict[str, np.ndarray] = field(default_factory=dict)


class VolumeSurfaceDetector(Detector):
    """Fused voxel map of a volume detector (`volume`, default `unet`) and `surface-gnn`.

    Params: `volume` / `volume_params` / `surface_params` (the views and their hyperparameters; the
    shared `epochs`, `lr`, `batch_size`, `modality_dropout` go to each view that takes them),
    `stack_fraction` (share of the fit split held out for the fusion rule and the cluster confidence),
    `project_mm` (splat radius around the mid-thickness surface), `background_samples` (background
    voxels sampled per held-out subject), `threshold`, `control_quantile` (as the voxel nets).
    """

    name = "volume-surface"
    defaults: ClassVar[dict[str, Any]] = {
        "volume": "unet", "volume_params": {}, "surface_params": {}, "stack_fraction": 0.3, "project_mm": 6.0,
        "background_samples": 20000, "threshold": 0.5, "control_quantile": 0.9, "mesh": "fsaverage5",
        **{k: None for k in SHARED}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        volume = get_detector(self.params["volume"])  # a misspelt name or parameter is refused here, not after hours
        if volume.space != "volume" or volume is type(self):
            raise ValueError(f"detector {self.name!r}: 'volume' must name a volume detector, got {volume.name!r}")
        self.params["volume"] = volume.name
        for key, name in (("volume_params", volume.name), ("surface_params", "surface-gnn")):
            unknown = set(self.params[key]) - set(get_detector(name).defaults) - {"min_size"}
            if unknown:
                raise ValueError(f"detector {self.name!r}: {key} has parameters {sorted(unknown)} that {name!r} "
                                 f"does not take; expected some of {sorted(get_detector(name).defaults)}")
        self._splat: Splat | None = None
        self._cache: dict[int, tuple] | None = None  # views of held-out cases, only while fitting/calibrating

    def covers(self, case: DetectionCase) -> bool:
        return case.surface is not None or any(m in case.volumes for m in self.modalities)

    def fit(self, cases: list[DetectionCase], workdir: str | Path | None = None,
            callbacks: Sequence[Callback] = ()) -> VolumeSurfaceDetector:
        """`Detector.fit`; each view's network trains under `workdir/volume` and `workdir/surface`
        (so a killed run resumes view by view) with this detector's `trainer` and `callbacks`."""
        self._view_training = (None if workdir is None else Path(workdir), tuple(callbacks))
        try:
            return super().fit(cases, workdir, callbacks)
        finally:
            del self._view_training

    # ---- fitting -------------------------------------------------------------------------------
    def _view_params(self, name: str, own: dict[str, Any]) -> dict[str, Any]:
        shared = {k: self.params[k] for k in SHARED if self.params[k] is not None and k in get_detector(name).defaults}
        return {**shared, **own}

    def _fit(self, cases: list[DetectionCase]) -> None:
        p = self.params
        self.threshold_ = float(p["threshold"])
        rng = np.random.default_rng(self.seed)
        held = set()
        for group in (True, False):  # stratified: patients and controls in both parts
            ids = [i for i, c in enumerate(cases) if c.is_patient is group]
            held.update(rng.permutation(ids)[:int(round(p["stack_fraction"] * len(ids)))].tolist())
        inner = [c for i, c in enumerate(cases) if i not in held]
        stack = [c for i, c in enumerate(cases) if i in held]
        vol_cases = [c for c in inner if any(m in c.volumes for m in self.modalities)]
        surf_cases = [c for c in inner if c.surface is not None]
        if not vol_cases or not surf_cases or not stack:
            raise ValueError(f"detector {self.name!r}: needs fitting subjects with volumes ({len(vol_cases)}) and "
                             f"with surfaces ({len(surf_cases)}) plus held-out ones for the fusion rule "
                             f"({len(stack)}); use a single-view detector otherwise")
        common = {"spacing": self.spacing, "seed": self.seed, "registration": self.registration,
                  "trainer": self.trainer}
        workdir, callbacks = self._view_training
        self.volume_ = get_detector(p["volume"])(modalities=self.modalities, **common,
                                                 **self._view_params(p["volume"], p["volume_params"]))
        self.volume_.fit(vol_cases, None if workdir is None else workdir / "volume", callbacks)
        self.surface_ = get_detector("surface-gnn")(**common, **self._view_params("surface-gnn", p["surface_params"]))
        self.surface_.fit(surf_cases, None if workdir is None else workdir / "surface", callbacks)
        self._cache = {}
        try:
            self.stack_ = self._fit_stack(stack, rng)
            self.decisions_.update(
                views={"volume": self.volume_.name, "surface": self.surface_.name},
                view_decisions={"volume": self.volume_.decisions_, "surface": self.surface_.decisions_},
                fusion_split=f"{len(inner)} subjects train the views, {len(stack)} held out of the fit split "
                             f"fit the fusion rule and the cluster confidence",
                fusion={k: m.to_json() for k, m in self.stack_.items()})
            self.calibrate_threshold(stack, float(p["control_quantile"]))
            self.confidence_ = self._fit_confidence(stack)
            self.decisions_["cluster_confidence"] = self.confidence_.to_json()
        finally:
            self._cache = None
        self.warnings_ += [f"{v.name}: {w}" for v in (self.volume_, self.surface_) for w in v.warnings_]

    def _fit_stack(self, cases: list[DetectionCase], rng: np.random.Generator) -> dict[str, Logistic]:
        """One logistic model per pattern on sampled voxels of held-out `cases` (all lesion voxels,
        `background_samples` others, weighted back to their share so probabilities stay calibrated)."""
        rows: dict[str, list] = {k: [] for k in PATTERNS}
        for case in cases:
            if case.is_patient and case.lesion is None:
                continue
            feats, present, ribbon = self._voxel_features(*self._views(case))
            y = np.zeros(ribbon.size, bool) if case.lesion is None else np.asarray(case.lesion.dataobj).ravel() > 0.5
            for pattern, names in PATTERNS.items():
                if not all(present[n.split("_")[1]] for n in names if "_" in n):
                    continue
                pool = np.flatnonzero(ribbon) if pattern == "surface" else np.arange(ribbon.size)
                pos, neg = pool[y[pool]], pool[~y[pool]]
                take = rng.choice(neg, min(len(neg), int(self.params["background_samples"])), replace=False)
                idx = np.concatenate([pos, take])
                w = np.r_[np.ones(len(pos)), np.full(len(take), len(neg) / max(len(take), 1))]
                rows[pattern].append((np.stack([feats[n][idx] for n in names], 1), y[idx], w))
        models = {}
        for pattern, names in PATTERNS.items():
            if not rows[pattern]:
                models[pattern] = Logistic(names, rule="max", n=0, n_positive=0)
                continue
            x, y, w = (np.concatenate(a) for a in zip(*rows[pattern], strict=True))
            models[pattern] = Logistic.fit(names, x, y, w, fallback="max")
            if models[pattern].rule:
                self.warn(f"fusion rule {pattern!r}: held-out voxels hold one class only; max of the raw views used")
        return models

    def _fit_confidence(self, cases: list[DetectionCase]) -> Logistic:
        """Cluster confidence on the clusters of held-out `cases` at the current threshold; a subject
        with both views also contributes its clusters with either view dropped, so the rule sees the
        missing patterns it will meet."""
        from fusemed.diagnosis.detect import clusters_of, truth_of

        xs, ys = [], []
        for case in cases:
            ref, views = self._views(case)
            lesion, _ = truth_of(self, case)
            for subset in ([views, *({k: v} for k, v in views.items())] if len(views) > 1 else [views]):
                maps = self._fuse(ref, subset)
                table, labels = clusters_of(self, maps)
                ids = table["cluster"].to_numpy(int)
                ys.append(np.isin(ids, np.unique(labels[lesion])) if lesion is not None else np.zeros(len(ids), bool))
                xs.append(self._cluster_features(maps, table, labels))
        x, y = np.concatenate(xs), np.concatenate(ys).astype(float)
        return Logistic.fit(CONFIDENCE, x, y, fallback=f"constant:{y.mean() if len(y) else 0.0:.6g}")

    def calibrate(self, cases: list[DetectionCase]) -> None:
        """Threshold (`control_quantile` of held-out map peaks, `Detector.calibrate_threshold`) and
        cluster confidence (refitted at that threshold) on held-out `cases`; the fusion rule stays."""
        self._check()
        self._cache = {}
        try:
            self.calibrate_threshold(cases, float(self.params["control_quantile"]))
            cases = [c for c in cases if self.covers(c)]
            if cases:
                self.confidence_ = self._fit_confidence(cases)
                self.decisions_["cluster_confidence"] = self.confidence_.to_json()
        finally:
            self._cache = None

    # ---- prediction ----------------------------------------------------------------------------
    @property
    def splat(self) -> Splat:
        """Vertex -> common-grid weights (built once per detector; depend on the grid only)."""
        if self._splat is None:
            self._splat = Splat.build(self.volume_.grid_, mid_surface(self.params["mesh"]),
                                      float(self.params["project_mm"]))
        return self._splat

    def _reference(self, case: DetectionCase) -> nib.Nifti1Image:
        """The output grid: the subject's reference image, or the template grid when it has no image."""
        try:
            return case.reference_image
        except ValueError:
            grid = self.volume_.grid_
            return nib.Nifti1Image(np.zeros(grid.shape, np.float32), grid.affine)

    def _views(self, case: DetectionCase) -> tuple[nib.Nifti1Image, dict[str, tuple[np.ndarray, ...]]]:
        """Output grid and each present view as (prob, sd[, ribbon]) arrays on it (cached while fitting)."""
        if self._cache is not None and id(case) in self._cache:
            return self._cache[id(case)]
        ref, views = self._reference(case), {}
        if self.volume_.covers(case):
            m = self.volume_.predict(case)
            var = np.clip(np.asarray(m.uncertainty.dataobj, np.float32), 0, None)
            views["volume"] = (np.asarray(m.prob.dataobj, np.float32), np.sqrt(var))
        if self.surface_.covers(case):
            s = self.surface_.predict(case)
            world = self.volume_.world(case) if case.volumes or case.to_template is not None else None
            if world is None and self.registration == "affine":
                log.warning("%s: subject %s has no volume to register: its grid is taken as template space",
                            self.name, case.subject)
            (prob, var), ribbon = self.splat.to_subject(np.stack([s.prob, s.uncertainty]), ref, world)
            views["surface"] = (prob, np.sqrt(np.clip(var, 0, None)), ribbon)
        if self._cache is not None:
            self._cache[id(case)] = (ref, views)
        return ref, views

    @staticmethod
    def _voxel_features(ref: nib.Nifti1Image, views: dict[str, tuple[np.ndarray, ...]]
                        ) -> tuple[dict[str, np.ndarray], dict[str, bool], np.ndarray]:
        """Flat per-voxel features (`PATTERNS` names) of a case's views, which are present, its ribbon."""
        n = int(np.prod(ref.shape[:3]))
        zero = np.zeros(n, np.float32)
        ribbon = views["surface"][2].ravel() if "surface" in views else np.zeros(n, bool)
        feats = {"ribbon": ribbon.astype(np.float32)}
        for v in ("volume", "surface"):
            prob, sd = (views[v][0].ravel(), views[v][1].ravel()) if v in views else (zero, zero)
            feats[f"logit_{v}"], feats[f"sd_{v}"] = logit(prob), sd
        return feats, {"volume": "volume" in views, "surface": "surface" in views}, ribbon

    def predict(self, case: DetectionCase) -> FusedMaps:
        """Fused probability and uncertainty (mean of the present views' MC-dropout variances) on the
        subject's reference grid; each present view's SD is kept for the cluster confidence."""
        self._check()
        if not self.covers(case):
            raise ValueError(f"subject {case.subject}: neither a surface nor any of the volumes {self.modalities}")
        return self._fuse(*self._views(case))

    def _fuse(self, ref: nib.Nifti1Image, views: dict[str, tuple[np.ndarray, ...]]) -> FusedMaps:
        """The fusion rule of the views present in `views` (the joint model, or the one view's own)."""
        feats, present, ribbon = self._voxel_features(ref, views)
        pattern = "both" if all(present.values()) else "volume" if present["volume"] else "surface"
        prob = self.stack_[pattern](np.stack([feats[n] for n in PATTERNS[pattern]], 1)).astype(np.float32)
        if pattern == "surface":
            prob[~ribbon] = 0.0  # nothing is known off the ribbon
        sd = {v: views[v][1] for v in views}
        var = sum(s ** 2 for s in sd.values()) / len(sd)
        shape = ref.shape[:3]
        return FusedMaps(nib.Nifti1Image(prob.reshape(shape), ref.affine),
                         nib.Nifti1Image(var.astype(np.float32), ref.affine), "volume", view_sd=sd)

    def _cluster_features(self, maps: FusedMaps, table: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        rows = []
        for k, peak in zip(table["cluster"].to_numpy(int), table["peak_score"].to_numpy(float), strict=True):
            inside = labels == k
            sd = {v: float(maps.view_sd[v][inside].mean()) if v in maps.view_sd else 0.0 for v in ("volume", "surface")}
            rows.append([float(logit(np.array(peak))), sd["volume"], sd["surface"],
                         float("volume" in maps.view_sd), float("surface" in maps.view_sd)])
        return np.asarray(rows, float).reshape(-1, len(CONFIDENCE))

    def cluster_confidence(self, maps: FusedMaps, table: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
        """(K,) calibrated P(cluster overlaps a lesion) for the clusters in `table` (used by `detect`)."""
        self._check()
        return self.confidence_(self._cluster_features(maps, table, labels))

    # ---- persistence: each view through its own save / load, nested in this detector's files ------
    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        meta = {"fusion": {k: m.to_json() for k, m in self.stack_.items()}, "confidence": self.confidence_.to_json()}
        tensors: dict[str, torch.Tensor] = {}
        for view, det in (("volume", self.volume_), ("surface", self.surface_)):
            with tempfile.TemporaryDirectory() as tmp:
                det.save(tmp)
                meta[view] = json.loads((Path(tmp) / "config.json").read_text())
                state = Path(tmp) / "state.pt"
                for k, v in torch.load(state, weights_only=True).items():
                    tensors[f"{view}/{k}"] = v
        return meta, tensors

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.stack_ = {k: Logistic(**m) for k, m in meta["fusion"].items()}
        self.confidence_ = Logistic(**meta["confidence"])
        for view in ("volume", "surface"):
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "config.json").write_text(json.dumps(meta[view]))
                torch.save({k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{view}/")},
                           Path(tmp) / "state.pt")
                setattr(self, f"{view}_", Detector.load(tmp))
