"""The detector contract and its registry.

A detector is a scikit-learn-like facade: `__init__` stores hyperparameters, `fit(cases)` learns
(state ends in `_`), `predict(case)` returns maps on the subject's own grid, `save`/`load` keep the
state as JSON plus a torch tensor file read with `weights_only=True` (no pickle anywhere).
Subclasses register themselves by defining `name`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import nibabel as nib
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from fusemed.choices import look_up
from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.grid import CommonGrid, foreground, normalise
from fusemed.diagnosis.registration import mni_template, register_to_template
from fusemed.diagnosis.training import Draw, train_net
from fusemed.io import atomic_save, atomic_write_text
from fusemed.training.config import DeviceConfig
from fusemed.uncertainty import MCDropout

log = logging.getLogger(__name__)

DETECTORS: dict[str, type[Detector]] = {}


@dataclass
class DetectionMaps:
    """Per-subject output. Volume detectors: NIfTI images on the subject's reference grid.
    Surface detectors: (V,) arrays on fsaverage5."""

    prob: nib.Nifti1Image | np.ndarray
    uncertainty: nib.Nifti1Image | np.ndarray
    space: str = "volume"


def mc_passes(net: torch.nn.Module, n: int, seed: int) -> Callable[..., torch.Tensor]:
    """`net`'s predictions as `(K, B, ...)`: K seeded MC-dropout passes (`fusemed.uncertainty.MCDropout`,
    only dropout layers stochastic; same seed, same maps), or its one deterministic pass when `n` <= 1."""
    if n <= 1:
        return lambda *args: net.eval()(*args)[None]
    return MCDropout(net, n_samples=n, seed=seed)


def get_detector(name: str) -> type[Detector]:
    """The detector class registered as `name` ("did you mean ...?" on a typo)."""
    return DETECTORS[look_up(name, sorted(DETECTORS))]


class NotFittedError(RuntimeError):
    """A detector was used before `fit` or `load`."""


class Detector:
    """Base of all detectors; volume pipeline (common grid, normalisation, way back) lives here.

    Args:
        modalities: volume modalities used, in channel order (missing ones are zero-filled and flagged).
        spacing: common-grid spacing in mm.
        seed: random seed for sampling and initialisation.
        registration: "affine": work in MNI152 template space, each subject affinely registered to it
            (see `fusemed.diagnosis.registration`); "none": keep the first training subject's field of
            view and assume the inputs already share one space.
        trainer: where the detector's network trains (accelerator, devices, strategy, precision, ...;
            `fusemed.training.config.DeviceConfig`); not part of the fitted state.
        **params: detector-specific hyperparameters (see each class's `defaults`).
    """

    name: ClassVar[str] = ""
    space: ClassVar[str] = "volume"
    supervised: ClassVar[bool] = True
    default_modalities: ClassVar[tuple[str, ...]] = ("t1", "flair", "pet")
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            DETECTORS[cls.name] = cls

    def __init__(self, modalities: tuple[str, ...] | list[str] | None = None, spacing: float = 2.0,
                 seed: int = 0, registration: str = "affine", trainer: DeviceConfig | dict | None = None,
                 **params: Any) -> None:
        unknown = set(params) - set(self.defaults) - {"min_size"}
        if unknown:
            raise ValueError(f"detector {self.name!r}: unknown parameters {sorted(unknown)}; "
                             f"expected some of {sorted(self.defaults)}")
        self.modalities = tuple(modalities or self.default_modalities)
        self.spacing = float(spacing)
        self.seed = int(seed)
        self.registration = look_up(registration, ("affine", "none"))
        self.trainer = DeviceConfig.model_validate(trainer or {})
        self.params = {**self.defaults, **params}
        self.min_size = float(params.get("min_size", 64.0 if self.space == "volume" else 5))
        self.grid_: CommonGrid | None = None
        self.threshold_: float | None = None
        self.warnings_: list[str] = []  # recorded, saved with the detector and copied into metrics.json
        # what fitting and calibration decided from the data, and why (saved; metrics.json["decisions"])
        self.decisions_: dict[str, Any] = {}

    @property
    def min_voxels(self) -> float:
        """`min_size` (mm^3) in voxels of the common grid."""
        return self.min_size / self.spacing ** 3

    # ---- fitting -------------------------------------------------------------------------------
    def covers(self, case: DetectionCase) -> bool:
        """Whether `case` has any modality this detector reads (else it cannot be scored, only skipped)."""
        if self.space == "surface":
            return case.surface is not None
        return any(m in case.volumes for m in self.modalities)

    def fit(self, cases: list[DetectionCase], workdir: str | Path | None = None,
            callbacks: Sequence[Callback] = ()) -> Detector:
        """Learn from `cases` (unsupervised detectors keep the controls only); returns self.

        Subjects with none of the detector's modalities are left out (logged), never imputed. A network
        trains on the shared Lightning stack (`train_net`) with its checkpoints under `workdir`
        (a temporary folder when None): calling `fit` again with the same `workdir` after a kill resumes
        from `last.ckpt`. `callbacks` are extra Lightning callbacks (tests, logging).
        """
        usable = [c for c in cases if self.covers(c)]
        if len(usable) < len(cases):
            log.warning("detector %r: %d subject(s) have none of %s and are left out of fitting",
                        self.name, len(cases) - len(usable), self.modalities)
        train = usable if self.supervised else [c for c in usable if not c.is_patient]
        if not train and self.supervised:
            raise ValueError(f"detector {self.name!r}: no subject to fit")
        if not train:
            raise ValueError(f"detector {self.name!r} learns healthy anatomy from controls only, and none of "
                             f"the {len(usable)} fitting subjects is a control (all have a lesion or "
                             f"diagnosis 1); add healthy controls or use a supervised detector")
        torch.manual_seed(self.seed)
        if self.space == "volume":
            space = mni_template() if self.registration == "affine" else train[0].reference_image
            self.grid_ = CommonGrid.covering(space, self.spacing)
        with ExitStack() as stack:
            folder = Path(workdir) if workdir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
            self._training = (folder, tuple(callbacks))
            try:
                self._fit(train)
            finally:
                del self._training
        log.info("fitted %s on %d subjects (threshold %.4g)", self.name, len(train), self.threshold_ or 0)
        return self

    def _fit(self, cases: list[DetectionCase]) -> None:
        raise NotImplementedError

    def train_net(self, objective: nn.Module, draw: Draw, **options: Any) -> nn.Module:
        """Train `objective` (this detector's net and loss) on the draws of `draw`, through the shared
        Lightning trainer (`fusemed.diagnosis.training.train_net`; `options`: epochs, batch_size, lr, ...)."""
        folder, callbacks = self._training
        return train_net(objective, draw, folder / "net", self.trainer, seed=self.seed, modalities=self.modalities,
                         callbacks=callbacks, **options)

    def calibrate(self, cases: list[DetectionCase]) -> None:
        """Adjust the operating threshold on held-out `cases` (default: keep the fitted one)."""

    def warn(self, message: str) -> None:
        """Log `message` and record it in `warnings_` (saved with the detector, shown in metrics)."""
        log.warning("%s: %s", self.name, message)
        self.warnings_.append(message)

    def calibrate_threshold(self, cases: list[DetectionCase], quantile: float) -> None:
        """Set `threshold_` so that about `quantile` of held-out `cases` show no false-positive cluster:
        the `quantile` quantile of their map peaks (`detect.map_peak`), measured on the grid where the
        threshold is applied, i.e. the maps `predict` returns on each subject's own grid (a threshold
        calibrated on the common template grid loses its meaning after resampling to the subject).

        Held-out controls are used when there are any: then about `quantile` of controls show no
        cluster at all (MELD's specificity). Without controls (a patients-only cohort) the held-out
        patients with a known lesion are used instead, on their map OUTSIDE the lesion: the peak of
        their clusters that do not overlap it (what `fp_per_patient` counts), so about `quantile` of
        patients show no false-positive cluster. The rule used is recorded in
        `decisions_["threshold_rule"]`.

        Never clipped: a quantile at the top of the map's range (saturated maps) is kept and recorded
        as a warning (the specificity target is then not reachable); with no cluster in any subject
        the threshold is left as it was, and that is recorded too."""
        from fusemed.diagnosis.detect import map_peak, truth_of

        cases = [c for c in cases if self.covers(c)]
        controls = [c for c in cases if not c.is_patient]
        if controls:
            peaks = np.array([map_peak(self, self.predict(c)) for c in controls])
            who = f"{len(controls)} held-out controls"
            rule = f"quantile {quantile:g} of the map peaks of {who}: the share of controls without a cluster"
        else:
            lesions = [(c, truth_of(self, c)[0]) for c in cases if c.is_patient]
            lesions = [(c, lesion) for c, lesion in lesions if lesion is not None]
            if not lesions:
                return
            peaks = np.array([map_peak(self, self.predict(c), lesion) for c, lesion in lesions])
            who = f"{len(lesions)} held-out patients (no control to calibrate on)"
            rule = (f"quantile {quantile:g} of the map peaks outside the lesion of {who}: the share of "
                    f"patients without a false-positive cluster")
        q = float(np.quantile(peaks, quantile))
        if q <= 0.0:
            self.warn(f"none of {who} shows a false-positive cluster at any threshold; "
                      f"threshold kept at {self.threshold_:.4g}")
            return
        if q >= 1.0 - 1e-3:  # within bisection resolution of the top of a probability map
            self.warn(f"threshold {q:.6g} for quantile {quantile:g} is at the top of the map range "
                      f"(maps saturate): the specificity target cannot be reached on these {who}")
        self.threshold_ = q
        self.decisions_["threshold_rule"] = rule
        log.info("%s: threshold %.4g from %s (subject grids)", self.name, q, who)

    def _check(self) -> None:
        if self.threshold_ is None:
            raise NotFittedError(f"detector {self.name!r} used before fit() or load()")

    def _drop(self, present: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Modality dropout in training: drop each present modality with probability
        `modality_dropout` (a hyperparameter of the detectors that use it), keeping at least one."""
        keep = present & (rng.random(present.shape[0]) >= float(self.params["modality_dropout"]))
        if not keep.any():
            keep = np.zeros_like(present)
            keep[rng.choice(np.flatnonzero(present))] = True
        return keep

    # ---- volume pipeline -------------------------------------------------------------------------
    def world(self, case: DetectionCase) -> np.ndarray | None:
        """The case's subject -> template world transform (estimated once and kept on the case;
        a transform the user set in `case.to_template` is used as given). None without registration."""
        if self.registration == "none":
            return None
        if case.to_template is None:
            # an intensity volume, never the lesion mask that `reference_image` falls back to (a
            # control's is empty); modalities share the subject's world, so any present one will do
            name = next((m for m in (case.reference, *self.modalities, *case.volumes) if m in case.volumes), None)
            if name is None:
                raise ValueError(f"subject {case.subject}: no volume to register to the MNI152 template")
            try:
                case.to_template = register_to_template(case.volumes[name], seed=self.seed)
            except RuntimeError as err:
                raise ValueError(f"subject {case.subject}: affine registration of its {name!r} volume to MNI152 "
                                 f"failed ({str(err).strip().splitlines()[-1]}); check that image, or set "
                                 f"registration: none for inputs already in one space") from err
        return case.to_template

    def prepare(self, case: DetectionCase) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Case on the common grid: x (M, D, H, W) z-scored, present (M,) bool, foreground (D, H, W)."""
        if self.grid_ is None:
            raise NotFittedError(f"detector {self.name!r} has no grid: fit() or load() first")
        world = self.world(case)
        raw = {m: self.grid_.resample(case.volumes[m], world=world) for m in self.modalities if m in case.volumes}
        if not raw:
            raise ValueError(f"subject {case.subject}: none of the modalities {self.modalities} is present "
                             f"(has {sorted(case.volumes)})")
        ref = case.reference if case.reference in raw else next(iter(raw))
        fg = foreground(raw[ref])
        x = np.zeros((len(self.modalities), *self.grid_.shape), dtype=np.float32)
        present = np.zeros(len(self.modalities), dtype=bool)
        for i, m in enumerate(self.modalities):
            if m in raw:
                x[i] = normalise(raw[m], fg)
                present[i] = True
        return x, present, fg

    def target(self, case: DetectionCase) -> np.ndarray:
        """The lesion mask on the common grid, (D, H, W) uint8 (zeros for a control or unknown)."""
        if case.lesion is None:
            return np.zeros(self.grid_.shape, dtype=np.uint8)
        return (self.grid_.resample(case.lesion, nearest=True, world=self.world(case)) > 0.5).astype(np.uint8)

    def predict(self, case: DetectionCase) -> DetectionMaps:
        """Score map and uncertainty on `case`'s reference grid (same shape and affine)."""
        self._check()
        x, present, fg = self.prepare(case)
        prob, unc = self._predict_grid(x, present, fg)
        prob, unc = prob * fg, unc * fg
        ref = case.reference_image
        world = self.world(case)
        return DetectionMaps(self.grid_.back(prob, ref, world), self.grid_.back(unc, ref, world), "volume")

    def _predict_grid(self, x: np.ndarray, present: np.ndarray,
                      fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # ---- persistence ---------------------------------------------------------------------------------
    def _state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """Detector-specific JSON state and tensors."""
        return {}, {}

    def _load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def save(self, folder: str | Path) -> Path:
        """Write `config.json` and `state.pt` into `folder` (atomically)."""
        self._check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta, tensors = self._state()
        cfg = {"name": self.name, "modalities": list(self.modalities), "spacing": self.spacing,
               "seed": self.seed, "registration": self.registration, "params": self.params, "min_size": self.min_size,
               "threshold": self.threshold_, "grid": None if self.grid_ is None else self.grid_.to_json(),
               "warnings": self.warnings_, "decisions": self.decisions_, "state": meta}
        atomic_save(folder / "state.pt", lambda p: torch.save(tensors, p))
        atomic_write_text(folder / "config.json", json.dumps(cfg, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Detector:
        """Rebuild a fitted detector saved by `save` (tensors read with `weights_only=True`)."""
        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"{cfg_path}: no detector config (expected a folder written by save())")
        cfg = json.loads(cfg_path.read_text())
        klass = get_detector(cfg["name"])
        det = klass(modalities=cfg["modalities"], spacing=cfg["spacing"], seed=cfg["seed"],
                    registration=cfg.get("registration", "none"), min_size=cfg["min_size"], **cfg["params"])
        det.threshold_ = cfg["threshold"]
        det.warnings_ = list(cfg.get("warnings", []))
        det.decisions_ = dict(cfg.get("decisions", {}))
        det.grid_ = None if cfg["grid"] is None else CommonGrid.from_json(cfg["grid"])
        tensors = torch.load(folder / "state.pt", weights_only=True)
        det._load_state(cfg["state"], tensors)
        return det
