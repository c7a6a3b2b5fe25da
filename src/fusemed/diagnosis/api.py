"""The three verbs of lesion detection: `train_detector`, `predict_detector`, `evaluate_detector`.

A detection run folder (a `fusemed.run.Run` of kind `detection`) holds `run.json`, `config.yaml`
(resolved, written first), `cohort_fingerprint.json`, `split.csv` (subject -> fit | calibration | test),
`training/net/` (the network's Lightning checkpoints and log, `fusemed.training.fit`), `detector/`
(config.json + state.pt, see `Detector.save`), `calibration.json` (cluster-confidence calibrator), and
after evaluation `metrics.json`, `detections.csv`, `froc.csv` (the operating curve,
`fusemed.diagnosis.operating`) and the test subjects' maps under `predictions/`. Rerunning the same
training into the same folder after a kill resumes the network from `training/net/checkpoints/last.ckpt`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback

from fusemed.diagnosis.clusters import COLUMNS, ClusterCalibrator
from fusemed.diagnosis.config import DetectionConfig
from fusemed.diagnosis.data import DetectionCase, cases_from_cohort
from fusemed.diagnosis.detect import critical_thresholds, detect, fit_calibrator, sweep_of
from fusemed.diagnosis.detectors import Detector, get_detector
from fusemed.diagnosis.detectors.base import DetectionMaps
from fusemed.diagnosis.metrics import SubjectDetection, per_subject_table, split_metrics
from fusemed.diagnosis.operating import (
    flat_operating_metrics,
    froc,
    operating_grid,
    operating_points,
    subject_outcomes,
    unscored,
)
from fusemed.io import (
    atomic_save,
    atomic_write_csv,
    atomic_write_json,
    check_subject_id,
    output_path,
    to_json_safe,
)
from fusemed.run import Run, RunTask
from fusemed.training.config import DeviceConfig
from fusemed.training.fit import check_accelerator
from fusemed.training.io import cohort_fingerprint
from fusemed.training.resume import cohort_changes, config_changes

log = logging.getLogger(__name__)


def _write_nifti(path: Path, img: nib.Nifti1Image) -> None:
    atomic_save(path, lambda tmp: nib.save(img, str(tmp)))


def _split(cases: list[DetectionCase], test_fraction: float, calibration_fraction: float,
           seed: int) -> dict[str, str]:
    """Subject -> split, stratified by patient/control (every split has both when the cohort has both)."""
    rng = np.random.default_rng(seed)
    out = {}
    for group in (True, False):
        ids = [c.subject for c in cases if c.is_patient is group]
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n_test = int(round(test_fraction * len(ids)))
        n_cal = int(round(calibration_fraction * (len(ids) - n_test)))
        for i, s in enumerate(ids):
            out[s] = "test" if i < n_test else "calibration" if i < n_test + n_cal else "fit"
    return out


def train_detector(cohort_dir: str | Path, model: str, out: str | Path, *, target: str = "lesion",
                   modalities: list[str] | None = None, spacing: float = 2.0, registration: str = "affine",
                   test_fraction: float = 0.3, calibration_fraction: float = 0.25, calibration: str = "isotonic",
                   seed: int = 0, params: dict[str, Any] | None = None,
                   trainer: DeviceConfig | dict[str, Any] | None = None) -> Path:
    """Fit detector `model` on a cohort's `fit` split, calibrate its threshold and cluster confidence
    on its `calibration` split, keep a `test` split for `evaluate_detector`; returns the run folder.

    Unsupervised detectors see only the controls of the fit split; patients in it are unused, and a
    cohort without controls is refused for them. Supervised detectors take a patients-only cohort:
    no normative channels, threshold calibrated on held-out patients outside their lesions, specificity
    null (see `decisions` in the detector's config.json and metrics.json).
    Keywords are those of `DetectionConfig` (see there; `trainer`: accelerator, devices, strategy, ...);
    `train_from_config` takes the record itself.
    """
    cfg = DetectionConfig(cohort=Path(cohort_dir), target=target, model=model, modalities=modalities,
                          spacing=spacing, registration=registration, test_fraction=test_fraction,
                          calibration_fraction=calibration_fraction, calibration=calibration, seed=seed,
                          params=params or {}, trainer=DeviceConfig.model_validate(trainer or {}))
    return train_from_config(cfg, out)


def train_from_config(cfg: DetectionConfig, out: str | Path, callbacks: Sequence[Callback] = ()) -> Path:
    """`train_detector` from a validated `DetectionConfig`; the resolved config is written first to
    `RUN/config.yaml` (detector name canonical, hyperparameters complete), so that rerunning into the
    same `out` resumes the network's training (a different config is refused). `callbacks` are extra
    Lightning callbacks for the network's trainer."""
    cohort_dir, out = Path(cfg.cohort), Path(out)
    check_accelerator(cfg.trainer)  # a GPU asked for on a machine without one: refused before any data is read
    klass = get_detector(cfg.model)
    cases = cases_from_cohort(cohort_dir, target=cfg.target)
    _check_controls(klass, cases, cohort_dir, cfg.target)
    det = klass(modalities=cfg.modalities, spacing=cfg.spacing, seed=cfg.seed, registration=cfg.registration,
                trainer=cfg.trainer, **cfg.params)
    resolved = cfg.model_copy(update={"cohort": cohort_dir.resolve(), "model": klass.name,
                                      "modalities": list(det.modalities),
                                      "params": {**det.params, "min_size": det.min_size}})
    rank0 = rank_zero_only.rank == 0
    if (out / "config.yaml").is_file():
        differ = config_changes(Run.open(out).config, resolved)
        if differ:
            raise ValueError(f"{out} already holds a detection run with a different config ({', '.join(differ)}); "
                             "choose another --out or delete it")
        changed = cohort_changes(out, cohort_dir)
        if changed:
            raise ValueError(f"{out}: the cohort changed since this run started ({'; '.join(changed)}); resuming "
                             "would mix two cohorts: choose another --out or delete it")
    if rank0:
        out.mkdir(parents=True, exist_ok=True)
        Run.create(out, "detection", RunTask(cfg.target, _target_kind(cohort_dir, cfg.target), 2))
        resolved.to_yaml(out / "config.yaml")
        if not (out / "cohort_fingerprint.json").is_file():
            atomic_write_json(out / "cohort_fingerprint.json", cohort_fingerprint(cohort_dir))
    split = _split(cases, cfg.test_fraction, cfg.calibration_fraction, cfg.seed)
    fit = [c for c in cases if split[c.subject] == "fit"]
    cal = [c for c in cases if split[c.subject] == "calibration"] or fit
    det.fit(fit, workdir=out / "training", callbacks=callbacks)
    if not rank0:  # DDP: the other processes only helped train the network
        return out
    cal = _scorable(det, cal)
    det.calibrate(cal)
    det.save(out / "detector")
    calibrator = fit_calibrator(det, cal, cfg.calibration)
    atomic_write_json(out / "calibration.json", calibrator.to_json())
    atomic_write_csv(out / "split.csv", pd.DataFrame({"subject": list(split), "split": list(split.values())}))
    log.info("trained %s on %d subjects (%d for calibration, threshold %.3g) -> %s", klass.name, len(fit),
             len(cal), det.threshold_, out)
    return out


def _check_controls(klass: type[Detector], cases: list[DetectionCase], cohort_dir: Path, target: str) -> None:
    """Refuse a controls-only detector on a cohort without controls (supervised ones take any cohort)."""
    if klass.supervised or any(not c.is_patient for c in cases):
        return
    from fusemed.diagnosis.detectors import DETECTORS

    supervised = ", ".join(sorted(n for n, k in DETECTORS.items() if k.supervised))
    raise ValueError(f"{cohort_dir}: detector {klass.name!r} learns healthy anatomy from controls only, and this "
                     f"cohort has none: all {len(cases)} subjects are patients (a lesion in their {target!r} mask, "
                     f"or diagnosis 1). Add healthy controls (an empty mask or diagnosis 0), or train a "
                     f"supervised detector ({supervised}), which works on patients only")


def _target_kind(cohort_dir: Path, target: str) -> str:
    """``mask`` or ``vertex_mask``: the kind cohort.yaml declares for ``target``."""
    from fusemed.cohort import CohortSpec

    return CohortSpec.from_yaml(cohort_dir / "cohort.yaml").targets[target].kind.value


def load_detector(run: str | Path) -> tuple[Detector, ClusterCalibrator, DetectionConfig]:
    """The fitted detector, its cluster calibrator and the resolved config of a detection run."""
    opened = Run.open(run)
    if opened.kind != "detection":
        raise ValueError(f"{opened.path}: a {opened.kind} run, not a detection run; "
                         f"train one with train_detector or `fusemed train --target lesion`")
    det = Detector.load(opened.fold_dirs()[0])
    return det, opened.posthoc, opened.config


def predict_detector(run: str | Path, cohort_dir: str | Path, outdir: str | Path,
                     subjects: list[str] | None = None) -> Path:
    """Write `<subject>_prob.nii.gz`, `<subject>_uncertainty.nii.gz` (subject's own grid),
    `<subject>_clusters.nii.gz` (label map, value = rank) and `<subject>_clusters.csv` for each subject.

    Surface detectors write `<subject>_prob.npz` (`probabilities`, `uncertainty`, `clusters`, (V,))."""
    det, cal, cfg = load_detector(run)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for case in _scorable(det, cases_from_cohort(cohort_dir, target=cfg.target, subjects=subjects)):
        _write_subject(det, cal, case, outdir)
    return outdir


def _scorable(det: Detector, cases: list[DetectionCase]) -> list[DetectionCase]:
    """The cases the detector can score; the others (none of its modalities) are named in a warning."""
    skipped = [c.subject for c in cases if not det.covers(c)]
    if skipped:
        log.warning("detector %r reads %s; not scored (none present): %s", det.name, det.modalities,
                    ", ".join(skipped))
    return [c for c in cases if det.covers(c)]


def _map_paths(outdir: Path, subject: str) -> dict[str, Path]:
    s = check_subject_id(subject)
    return {k: output_path(outdir, f"{s}_{k}") for k in (
        "prob.npz", "prob.nii.gz", "uncertainty.nii.gz", "clusters.nii.gz", "clusters.csv")}


def _write_subject(det: Detector, cal: ClusterCalibrator, case: DetectionCase, outdir: Path,
                   mri_negative: bool | None = None, reuse: bool = False):
    """Detect one subject and write its maps; with `reuse`, maps already in `outdir` (written for this
    detector and cohort, see `_maps_inputs`) are read back instead of predicted again."""
    paths = _map_paths(outdir, case.subject)
    saved = _saved_maps(paths, det.space, uncertainty=True) if reuse else None
    maps, rec = detect(det, case, cal, mri_negative, maps=saved)
    _save_maps(paths, maps, rec, volumes=saved is None)  # maps read back are on disk already
    return maps, rec


def _saved_maps(paths: dict[str, Path], space: str, uncertainty: bool = False) -> DetectionMaps | None:
    """The maps `_save_maps` wrote (loaded into memory: they may be rewritten), or None if absent.
    Without `uncertainty` only the probability map is read (what the operating sweep needs)."""
    if space == "surface":
        if not paths["prob.npz"].is_file():
            return None
        with np.load(paths["prob.npz"]) as z:
            return DetectionMaps(z["probabilities"], z["uncertainty"] if uncertainty else None, "surface")
    names = ("prob.nii.gz", "uncertainty.nii.gz") if uncertainty else ("prob.nii.gz",)
    if not all(paths[n].is_file() for n in names):
        return None
    prob, *unc = (nib.load(paths[n]) for n in names)
    def loaded(img): return nib.Nifti1Image(np.asarray(img.dataobj, np.float32), img.affine, img.header)
    return DetectionMaps(loaded(prob), loaded(unc[0]) if unc else None, "volume")


def _maps_inputs(run: Path, cohort_dir: Path, det: Detector, outdir: Path) -> bool:
    """Record in `outdir/inputs.json` what the maps there are predicted from (the cohort's fingerprint,
    the saved detector's files); True when the maps already there came from the same inputs, so an
    interrupted or repeated evaluation reads them back instead of predicting again. Never for a
    detector whose cluster confidence needs more than the saved maps (volume-surface)."""
    detector_files = sorted((run / "detector").rglob("*"))
    inputs = {"cohort": cohort_fingerprint(cohort_dir)["sha256"],
              "detector": {p.relative_to(run).as_posix(): f"{p.stat().st_size}:{p.stat().st_mtime_ns}"
                           for p in detector_files if p.is_file()}}
    record = outdir / "inputs.json"
    same = record.is_file() and json.loads(record.read_text()) == inputs
    if not same:
        atomic_write_json(record, inputs)
    return same and getattr(det, "cluster_confidence", None) is None


def _save_maps(paths: dict[str, Path], maps, rec: SubjectDetection, volumes: bool = True) -> None:
    """Write a subject's maps and clusters; `volumes=False` skips the probability and uncertainty
    volumes (already saved; a surface subject's single file holds its clusters, so it is rewritten)."""
    if maps.space == "surface":
        atomic_save(paths["prob.npz"], lambda tmp: np.savez_compressed(
            tmp, probabilities=maps.prob, uncertainty=maps.uncertainty, clusters=rec.labels))
    else:
        if volumes:
            _write_nifti(paths["prob.nii.gz"], maps.prob)
            _write_nifti(paths["uncertainty.nii.gz"], maps.uncertainty)
        _write_nifti(paths["clusters.nii.gz"], nib.Nifti1Image(rec.labels.astype(np.int16), maps.prob.affine))
    atomic_write_csv(paths["clusters.csv"], rec.clusters)


def read_truth(cohort_dir: Path, truth: str | Path | None) -> dict[str, bool]:
    """Subject -> MRI-negative flag from the simulator's `truth/oracle.csv` (any lesion flagged)."""
    candidates = [Path(truth)] if truth else [cohort_dir / "truth" / "oracle.csv",
                                               cohort_dir.parent / "truth" / "oracle.csv"]
    for path in candidates:
        if path.is_file():
            df = pd.read_csv(path)
            if "mri_negative" not in df.columns or "subject" not in df.columns:
                raise ValueError(f"{path}: expected columns 'subject' and 'mri_negative', got {list(df.columns)}")
            df = df.dropna(subset=["mri_negative"])
            return {str(k): bool(v) for k, v in df.groupby("subject")["mri_negative"].agg(
                lambda s: bool(np.any(s.astype(float) > 0))).items()}
    log.warning("no truth table found for %s: mri_negative / mri_visible metrics will be empty", cohort_dir)
    return {}


def evaluate_detector(run: str | Path, cohort_dir: str | Path, truth: str | Path | None = None,
                      subjects: list[str] | None = None, threshold: float | None = None,
                      thresholds: np.ndarray | None = None) -> dict:
    """Predict the run's test split (or `subjects`), write `RUN/metrics.json`, `RUN/detections.csv` (one
    row per subject, with `detected_at_spec80`, ... at each matched operating point), `RUN/froc.csv` and
    the maps under `RUN/predictions/`; returns the metrics (NaN written as null).

    Metrics at the run's threshold (`split_metrics`) and at matched operating points over the grid
    `thresholds` (default `operating.operating_grid`: a fixed grid plus each scored subject's critical
    thresholds): `sens_at_spec80`, `sens_at_spec90`
    (specificity on the evaluated controls, held out from fitting and calibration), `sens_at_fp1`
    (<= 1 false-positive cluster per patient), with the specificity / FP rate reached and the
    threshold used; the same sensitivities under `mri_negative` / `mri_visible`. Subjects the detector
    cannot score count as misses (`n_unscored_patients`, `n_unscored_controls`). Warnings recorded by
    the detector (threshold at the edge of the map range, ...) or the operating points are listed
    under `warnings`.

    `threshold` overrides the map threshold (another operating point, in [0, 1)); its files are then
    suffixed `-thr<threshold>` (`metrics-thr0.2.json`, ...). Cluster confidences keep the run's
    calibrator, fitted at the run's own threshold.
    """
    run, cohort_dir = Path(run), Path(cohort_dir)
    det, cal, cfg = load_detector(run)
    suffix = ""
    if threshold is not None:
        if not 0.0 <= float(threshold) < 1.0:
            raise ValueError(f"threshold {threshold}: detection maps are probabilities, expected 0 <= threshold < 1")
        det.threshold_, suffix = float(threshold), f"-thr{threshold:g}"
    if subjects is None:
        split = pd.read_csv(run / "split.csv", dtype={"subject": str})
        subjects = split.loc[split["split"] == "test", "subject"].tolist()
    flags = read_truth(cohort_dir, truth)
    outdir = run / f"predictions{suffix}"
    outdir.mkdir(exist_ok=True)
    cases = cases_from_cohort(cohort_dir, target=cfg.target, subjects=subjects)
    scorable = {c.subject for c in _scorable(det, cases)}
    reuse = _maps_inputs(run, cohort_dir, det, outdir)
    records, critical = [], []
    for case in cases:
        flag = flags.get(case.subject)
        if case.subject in scorable:
            maps, rec = _write_subject(det, cal, case, outdir, flag, reuse=reuse)
            critical.extend(critical_thresholds(det, maps, rec.lesion))
        else:  # stays in the denominators: a miss for a patient
            rec = SubjectDetection(subject=case.subject, is_patient=case.is_patient,
                                   clusters=pd.DataFrame(columns=COLUMNS), labels=np.zeros(0, np.int32),
                                   mri_negative=flag if case.is_patient else None, scored=False)
        records.append(rec)
    grid = operating_grid(critical) if thresholds is None else np.sort(np.asarray(thresholds, float))
    sweeps = [sweep_of(det, case, _saved_maps(_map_paths(outdir, case.subject), det.space), grid,
                       flags.get(case.subject)) if case.subject in scorable
              else unscored(case.subject, case.is_patient, grid, flags.get(case.subject)) for case in cases]
    metrics = split_metrics(records)
    curve = froc(sweeps)
    points, point_warnings = operating_points(curve)
    overall, neg, vis = flat_operating_metrics(points)
    metrics.update(overall)
    metrics["mri_negative"].update(neg)
    metrics["mri_visible"].update(vis)
    metrics = to_json_safe(metrics)
    metrics["n_unscored"] = len(cases) - len(scorable)  # subjects without any of the detector's modalities
    metrics["model"] = cfg.model
    metrics["threshold"] = det.threshold_
    metrics["decisions"] = det.decisions_  # normative channels used or not, threshold rule, and why
    metrics["warnings"] = [*det.warnings_, *point_warnings]
    atomic_write_json(run / f"metrics{suffix}.json", metrics)
    table = per_subject_table(records).merge(subject_outcomes(sweeps, points), on="subject", how="left")
    atomic_write_csv(run / f"detections{suffix}.csv", table)
    atomic_write_csv(run / f"froc{suffix}.csv", curve)
    return metrics
