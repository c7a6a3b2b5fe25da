"""Lesion-detection metrics: the MELD protocol, the prototype's ranking protocol, PPV, Dice, ECE.

Definitions (see docs/diagnosis.md):
- `sensitivity`: share of patients with at least one cluster overlapping the lesion (MELD).
- `sensitivity_margin20`: same, a cluster within 20 mm of the lesion counts (MELD's margin variant).
- `specificity`: share of controls with no cluster at all (MELD).
- `fp_per_patient`: mean number of clusters not overlapping the lesion, per patient.
- `top1` / `top5`: share of patients whose best-ranked overlapping cluster has rank <= 1 / <= 5
  (clusters ranked by peak score: the prototype's protocol).
- `ppv`: overlapping clusters / all clusters, over patients (MELD Graph's cluster-level PPV).
- `dice`: mean voxel (or vertex) Dice between the union of clusters and the lesion, over patients.
- `cluster_ece`: 15 equal-width-bin ECE of the calibrated cluster confidence against "cluster
  overlaps a lesion", over all clusters of patients and controls (Guo et al. 2017 binning).
The same keys are reported under `mri_negative` and `mri_visible` (those patients + all controls).
Subjects the detector could not score (`scored=False`) stay in the denominators: an unscored patient
is a miss (sensitivity, top1, top5; Dice 0); an unscored control is left out of specificity; both
counts are returned (`n_unscored_patients`, `n_unscored_controls`). Matched operating points (FROC,
sensitivity at fixed specificity) are in `fusemed.diagnosis.operating`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from monai.metrics import compute_dice

KEYS = ("sensitivity", "sensitivity_margin20", "specificity", "fp_per_patient", "top1", "top5", "ppv",
        "dice", "cluster_ece")


@dataclass
class SubjectDetection:
    """One subject's clusters against its truth.

    Attributes:
        clusters: cluster table (`cluster`, `rank`, `confidence`, ...).
        labels: cluster label map (value k = cluster k), same shape as `lesion`.
        lesion: boolean lesion mask (None for a control).
        lesion_distance: distance in mm to the lesion, same shape (None for a control).
        mri_negative: the truth's flag for the lesion (None when unknown or a control).
        scored: False when the detector could not read the subject (no clusters, counted as a miss).
    """

    subject: str
    is_patient: bool
    clusters: pd.DataFrame
    labels: np.ndarray
    lesion: np.ndarray | None = None
    lesion_distance: np.ndarray | None = None
    mri_negative: bool | None = None
    scored: bool = True

    def hits(self, margin_mm: float = 0.0) -> np.ndarray:
        """(K,) bool: cluster k overlaps the lesion (or comes within `margin_mm` of it)."""
        if not self.scored or "cluster" not in self.clusters:
            return np.zeros(len(self.clusters), bool)
        ids = self.clusters["cluster"].to_numpy(dtype=int)
        if self.lesion is None or not self.lesion.any() or ids.size == 0:
            return np.zeros(ids.size, bool)
        if margin_mm <= 0:
            touched = np.unique(self.labels[self.lesion])
        else:
            touched = np.unique(self.labels[self.lesion_distance <= margin_mm])
        return np.isin(ids, touched)


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error, equal-width bins ((m-1)/M, m/M], empty bins skipped."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    ok = ~np.isnan(confidence)
    confidence, correct = confidence[ok], correct[ok]
    if confidence.size == 0:
        return float("nan")
    idx = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for m in range(bins):
        sel = idx == m
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(total)


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    p = torch.from_numpy(pred.astype(np.float32)).reshape(1, 1, -1)
    t = torch.from_numpy(truth.astype(np.float32)).reshape(1, 1, -1)
    return float(compute_dice(p, t, include_background=True, ignore_empty=False)[0, 0])


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def detection_metrics(results: list[SubjectDetection], margin_mm: float = 20.0) -> dict:
    """All metric keys over `results`, plus counts; NaN where a quantity is undefined."""
    patients = [r for r in results if r.is_patient and (not r.scored or (r.lesion is not None and r.lesion.any()))]
    controls = [r for r in results if not r.is_patient and r.scored]
    sens, sens_m, top1, top5, fp, dice = [], [], [], [], [], []
    n_hit_clusters = n_patient_clusters = 0
    for r in patients:
        if not r.scored:  # a miss on every count that has the patient in its denominator
            for values in (sens, sens_m, top1, top5, dice):
                values.append(0.0)
            continue
        h, hm = r.hits(), r.hits(margin_mm)
        ranks = r.clusters["rank"].to_numpy(dtype=int)
        best = int(ranks[h].min()) if h.any() else None
        sens.append(float(h.any()))
        sens_m.append(float(hm.any()))
        top1.append(float(best is not None and best <= 1))
        top5.append(float(best is not None and best <= 5))
        fp.append(float((~h).sum()))
        dice.append(_dice(r.labels > 0, r.lesion))
        n_hit_clusters += int(h.sum())
        n_patient_clusters += int(h.size)
    conf, correct = [], []
    for r in (r for r in results if r.scored):
        conf.extend(r.clusters["confidence"].to_numpy(dtype=float).tolist())
        correct.extend(r.hits().astype(float).tolist())
    return {
        "sensitivity": _mean(sens), "sensitivity_margin20": _mean(sens_m),
        "specificity": _mean([float(len(r.clusters) == 0) for r in controls]),
        "fp_per_patient": _mean(fp), "top1": _mean(top1), "top5": _mean(top5),
        "ppv": n_hit_clusters / n_patient_clusters if n_patient_clusters else float("nan"),
        "dice": _mean(dice), "cluster_ece": ece(np.asarray(conf), np.asarray(correct)),
        "n_patients": len(patients), "n_controls": len(controls),
        "n_unscored_patients": sum(not r.scored for r in patients),
        "n_unscored_controls": sum(not r.scored and not r.is_patient for r in results),
        "n_clusters": int(sum(len(r.clusters) for r in results)),
    }


def split_metrics(results: list[SubjectDetection], margin_mm: float = 20.0) -> dict:
    """`detection_metrics` overall and under `mri_negative` / `mri_visible` (each with all controls)."""
    out = detection_metrics(results, margin_mm)
    controls = [r for r in results if not r.is_patient]
    for key, flag in (("mri_negative", True), ("mri_visible", False)):
        sub = [r for r in results if r.is_patient and r.mri_negative is flag]
        out[key] = detection_metrics(sub + controls, margin_mm)
    return out


def per_subject_table(results: list[SubjectDetection], margin_mm: float = 20.0) -> pd.DataFrame:
    """One row per subject: detected, detected within the margin, rank of the lesion, cluster count,
    whether the detector could score it."""
    rows = []
    for r in results:
        h = r.hits()
        if not r.scored:
            rows.append({"subject": r.subject, "patient": int(r.is_patient), "n_clusters": 0, "detected": 0,
                         "detected_margin20": 0, "lesion_rank": None, "mri_negative": r.mri_negative,
                         "scored": 0})
            continue
        ranks = r.clusters["rank"].to_numpy(dtype=int)
        rows.append({"subject": r.subject, "patient": int(r.is_patient), "n_clusters": len(r.clusters),
                     "detected": int(h.any()), "detected_margin20": int(r.hits(margin_mm).any()),
                     "lesion_rank": int(ranks[h].min()) if h.any() else None,
                     "mri_negative": r.mri_negative, "scored": 1})
    return pd.DataFrame(rows)
