"""Detection at matched operating points: FROC, sensitivity at fixed specificity, at <= 1 FP/patient.

A detector's own threshold is one operating point; two detectors at different specificities
(0.71 vs 0.96) cannot be ranked by sensitivity. So every subject's map is re-clustered at each
threshold of a grid (`sweep`), exactly as at the run's own threshold (same cluster rule, same minimum
size, on the subject's own grid), and the curves are read at matched points (`operating_points`):

- FROC (Chakraborty 1989; as in MELD and deepFCD reports): sensitivity (patients with a cluster
  overlapping the lesion) against the mean number of false-positive clusters per patient;
- sensitivity at specificity 0.8 and 0.9: specificity is subject-level on the controls evaluated
  (held out from fitting and calibration: the run's test split): a control with any cluster above
  the threshold is a false positive (MELD). The lowest grid threshold reaching the target is used;
  the specificity it actually reaches is reported beside it;
- sensitivity at <= 1 false-positive cluster per patient.

Subjects the detector cannot score (none of its modalities present) stay in the denominators:
an unscored patient is a miss at every threshold; unscored controls cannot be false positives and are
left out of specificity; both counts are reported (`n_unscored_patients`, `n_unscored_controls`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Default threshold grid: dense near 0 and 1 where probability maps saturate (logit-spaced).
N_THRESHOLDS = 41
TARGET_SPECIFICITIES = (0.8, 0.9)
MAX_FP_PER_PATIENT = 1.0


def default_thresholds(n: int = N_THRESHOLDS) -> np.ndarray:
    """(n,) ascending thresholds in (0, 1), evenly spaced in logit from 0.0025 to 0.9975."""
    return 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, n)))


def operating_grid(critical: list[float] | np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """`base` (default `default_thresholds()`) joined with the subjects' `critical` thresholds
    (`detect.critical_thresholds`: where each one's outcome last changes), sorted, unique, inside (0, 1).

    A fixed grid alone is coarse where a detector's maps crowd (41 logit-spaced points are 0.07 apart
    around 0.5): the control that brings specificity to 0.8 may sit between two points, and the curve
    then reads the next one (0.89 or 1.0), which understates sensitivity at the target."""
    base = default_thresholds() if base is None else np.asarray(base, float)
    c = np.asarray(critical, float)
    c = c[np.isfinite(c) & (c > 0) & (c < 1)]
    return np.unique(np.concatenate([base, c]))


@dataclass
class Sweep:
    """One subject's detection outcome at every threshold of `thresholds` (T,), ascending.

    Attributes:
        detected: (T,) bool, a cluster overlaps the lesion (always False for controls and unscored).
        false_clusters: (T,) int, clusters not overlapping the lesion (all clusters of a control).
        scored: False when the detector could not read the subject (then counted as described above).
    """

    subject: str
    is_patient: bool
    thresholds: np.ndarray
    detected: np.ndarray
    false_clusters: np.ndarray
    scored: bool = True
    mri_negative: bool | None = None


def sweep(subject: str, is_patient: bool, thresholds: np.ndarray,
          cluster_at: Callable[[float], tuple[pd.DataFrame, np.ndarray]],
          lesion: np.ndarray | None, score_max: float, mri_negative: bool | None = None) -> Sweep:
    """Cluster a subject's map at each threshold with `cluster_at(t) -> (table, labels)` and compare
    with `lesion` (bool, labels' shape; None for a control). Thresholds at or above the map's
    maximum `score_max` give no cluster and are not computed."""
    t = np.asarray(thresholds, float)
    detected = np.zeros(t.size, bool)
    false = np.zeros(t.size, int)
    for i, thr in enumerate(t):
        if thr >= score_max:
            break
        table, labels = cluster_at(float(thr))
        ids = table["cluster"].to_numpy(dtype=int)
        on_lesion = lesion is not None and lesion.any()
        hit = np.isin(ids, np.unique(labels[lesion])) if on_lesion else np.zeros(ids.size, bool)
        detected[i] = bool(hit.any())
        false[i] = int((~hit).sum())
    return Sweep(subject, is_patient, t, detected, false, True, mri_negative if is_patient else None)


def unscored(subject: str, is_patient: bool, thresholds: np.ndarray, mri_negative: bool | None = None) -> Sweep:
    """The sweep of a subject the detector could not score: a miss (patient) at every threshold."""
    t = np.asarray(thresholds, float)
    return Sweep(subject, is_patient, t, np.zeros(t.size, bool), np.zeros(t.size, int), False,
                 mri_negative if is_patient else None)


def _sensitivity(sweeps: list[Sweep], n_t: int) -> np.ndarray:
    if not sweeps:
        return np.full(n_t, np.nan)
    return np.mean([s.detected for s in sweeps], axis=0)


def froc(sweeps: list[Sweep]) -> pd.DataFrame:
    """One row per threshold: `sensitivity` (all patients, unscored = miss), `fp_per_patient` (mean
    false clusters over scored patients), `specificity` (scored controls with no cluster), and the
    sensitivity of the `mri_negative` / `mri_visible` patients."""
    if not sweeps:
        raise ValueError("froc: no subjects")
    t = sweeps[0].thresholds
    if any(s.thresholds.shape != t.shape or not np.allclose(s.thresholds, t) for s in sweeps):
        raise ValueError("froc: every subject must be swept over the same thresholds")
    patients = [s for s in sweeps if s.is_patient]
    scored_patients = [s for s in patients if s.scored]
    controls = [s for s in sweeps if not s.is_patient and s.scored]
    fp = np.mean([s.false_clusters for s in scored_patients], axis=0) if scored_patients else np.full(t.size, np.nan)
    spec = np.mean([s.false_clusters == 0 for s in controls], axis=0) if controls else np.full(t.size, np.nan)
    return pd.DataFrame({
        "threshold": t,
        "sensitivity": _sensitivity(patients, t.size),
        "fp_per_patient": fp,
        "specificity": spec,
        "sensitivity_mri_negative": _sensitivity([s for s in patients if s.mri_negative is True], t.size),
        "sensitivity_mri_visible": _sensitivity([s for s in patients if s.mri_negative is False], t.size),
    })


_POINT = ("sensitivity", "sensitivity_mri_negative", "sensitivity_mri_visible", "specificity", "fp_per_patient",
          "threshold")


def _read(curve: pd.DataFrame, ok: np.ndarray, name: str, warnings: list[str]) -> dict[str, float]:
    """The row of the lowest threshold where `ok` holds (the most sensitive admissible point)."""
    if not ok.any():
        warnings.append(f"{name}: no threshold of the grid reaches it (max specificity "
                        f"{np.nanmax(curve['specificity'], initial=np.nan):.3g}); reported as NaN")
        return dict.fromkeys(_POINT, float("nan"))
    row = curve.iloc[int(np.flatnonzero(ok)[0])]
    return {c: float(row[c]) for c in _POINT}


def operating_points(curve: pd.DataFrame, specificities: tuple[float, ...] = TARGET_SPECIFICITIES,
                     max_fp: float = MAX_FP_PER_PATIENT) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Matched operating points read off a `froc` curve, and warnings for unreachable ones.

    Returns ({"spec80": {...}, "spec90": {...}, "fp1": {...}}, warnings); each point holds
    sensitivity (overall, MRI-negative, MRI-visible), the specificity and FP/patient reached, and the
    threshold used."""
    warnings: list[str] = []
    points = {}
    spec = curve["specificity"].to_numpy(float)
    undefined = bool(np.isnan(spec).all())  # no scored control: specificity is undefined, not 0
    if undefined:
        warnings.append("specificity undefined (null): no control among the evaluated subjects (a patients-only "
                        "cohort); sensitivity at a specificity target is null, read sensitivity at <= 1 FP/patient")
    for s in specificities:
        points[f"spec{round(100 * s)}"] = dict.fromkeys(_POINT, float("nan")) if undefined else _read(
            curve, np.nan_to_num(spec, nan=-1.0) >= s - 1e-12, f"specificity {s:g}", warnings)
    fp = curve["fp_per_patient"].to_numpy(float)
    points[f"fp{max_fp:g}"] = _read(curve, np.nan_to_num(fp, nan=np.inf) <= max_fp + 1e-12,
                                    f"<= {max_fp:g} FP/patient", warnings)
    return points, warnings


def flat_operating_metrics(points: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float],
                                                                         dict[str, float]]:
    """(overall, MRI-negative, MRI-visible) metric keys: `sens_at_spec80`, `spec_at_spec80`,
    `threshold_at_spec80`, ..., `sens_at_fp1`, `fp_at_fp1`."""
    overall: dict[str, float] = {}
    neg: dict[str, float] = {}
    vis: dict[str, float] = {}
    for key, p in points.items():
        overall[f"sens_at_{key}"] = p["sensitivity"]
        overall[f"spec_at_{key}"] = p["specificity"]
        overall[f"fp_at_{key}"] = p["fp_per_patient"]
        overall[f"threshold_at_{key}"] = p["threshold"]
        neg[f"sens_at_{key}"] = p["sensitivity_mri_negative"]
        vis[f"sens_at_{key}"] = p["sensitivity_mri_visible"]
    return overall, neg, vis


def subject_outcomes(sweeps: list[Sweep], points: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Per subject, at each matched operating point `key` of `points` (`operating_points`):
    `detected_at_<key>` (patients; an unscored one is a miss; NaN for controls) and
    `false_clusters_at_<key>`; NaN where the point is unreachable. What paired comparisons of two
    detectors at the same specificity are computed from (the same patients, each detected or not)."""
    rows = []
    for s in sweeps:
        row: dict[str, object] = {"subject": s.subject}
        for key, point in points.items():
            t = point["threshold"]
            hit = np.flatnonzero(np.isclose(s.thresholds, t, rtol=0, atol=1e-12)) if np.isfinite(t) else []
            if len(hit) == 0:
                row[f"detected_at_{key}"] = row[f"false_clusters_at_{key}"] = float("nan")
                continue
            i = int(hit[0])
            row[f"detected_at_{key}"] = float(s.detected[i]) if s.is_patient else float("nan")
            row[f"false_clusters_at_{key}"] = float(s.false_clusters[i])
        rows.append(row)
    return pd.DataFrame(rows)
