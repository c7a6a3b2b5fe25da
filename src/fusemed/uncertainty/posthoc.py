"""The one call the training pipeline makes per fold: calibrate, summarise members, conformalise.

`posthoc_fold` takes raw logits of a calibration split (with labels and missing-modality patterns) and of
the test split, and returns the uncertainty columns of `predictions.csv` for the test subjects.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from fusemed.uncertainty.calibration import TemperatureScaler, logits_to_probs
from fusemed.uncertainty.conformal import ConformalClassifier, format_sets
from fusemed.uncertainty.entropy import summarize_members

log = logging.getLogger(__name__)

COLUMNS = ("p", "p_low", "p_high", "entropy", "aleatoric", "epistemic", "conformal_set", "abstain")


def as_member_logits(logits: np.ndarray, n: int, member_axis: bool | None = None) -> np.ndarray:
    """Logits of n subjects → `(K, n, C')`, C' = 1 (binary logit of class 1) or C (multiclass).

    Accepted: `(n,)`, `(n, 1)`, `(n, C)` (one member) and `(K, n)`, `(K, n, 1)`, `(K, n, C)`. A 2-D array is
    read as members when its first axis is not n; pass `member_axis` to settle the case K == n.
    """
    z = np.asarray(logits, dtype=float)
    if z.ndim == 1:
        z = z[None, :, None]
    elif z.ndim == 2:
        members = member_axis if member_axis is not None else z.shape[0] != n
        z = z[:, :, None] if members else z[None]
    elif z.ndim != 3:
        raise ValueError(f"logits must have 1 to 3 dimensions ((K,) n (, C)); got shape {z.shape}")
    if z.shape[1] != n:
        raise ValueError(f"logits of shape {np.shape(logits)} do not describe {n} subjects")
    return z


def posthoc_fold(
    cal_logits: np.ndarray,
    cal_y: np.ndarray,
    cal_groups: Sequence[Hashable] | None,
    test_logits: np.ndarray,
    test_groups: Sequence[Hashable] | None,
    *,
    calibrate: bool,
    alpha: float,
    score: str = "lac",
    groupby: str = "pattern",
    randomized: bool = False,
    interval: float = 0.9,
    member_axis: bool | None = None,
) -> pd.DataFrame:
    """Uncertainty columns for the test subjects of one fold.

    Args:
        cal_logits: calibration split logits, `(n_cal[, C])` or with a member axis `(K, n_cal[, C])`.
        cal_y: `(n_cal,)` integer labels.
        cal_groups: `(n_cal,)` missing-modality patterns (`"t1+pet"`), needed for `groupby="pattern"`.
        test_logits: `(n[, C])` or `(K, n[, C])` (K MC-dropout passes or ensemble members).
        test_groups: `(n,)` patterns of the test subjects.
        calibrate: fit temperature scaling on the calibration split first (on the members' mean probability).
        alpha: conformal miscoverage level (sets cover the truth with probability ≥ 1 − alpha).
        score / groupby / randomized: see `ConformalClassifier`.
        interval: mass of the member percentile interval `p_low`–`p_high`.

    Returns:
        DataFrame with one row per test subject (input order) and columns `p, p_low, p_high, entropy,
        aleatoric, epistemic, conformal_set, abstain`; binary `p` is P(class 1) (and, when calibrated,
        `p_uncal` is P(class 1) before temperature scaling), multiclass adds
        `p_0 … p_{C−1}` and `p` is the top-class probability. `frame.attrs` holds
        `temperature` and `conformal` (q̂ and fallback per group).
    """
    cal_y = np.asarray(cal_y).astype(int)
    n_test = len(test_groups) if test_groups is not None else None
    cal_z = as_member_logits(cal_logits, len(cal_y), member_axis)
    test_z = np.asarray(test_logits, dtype=float)
    if n_test is None:  # no groups given: the subjects are the first axis unless 3-D
        n_test = test_z.shape[1] if test_z.ndim == 3 or member_axis else test_z.shape[0]
    test_z = as_member_logits(test_z, n_test, member_axis)
    if cal_z.shape[2] != test_z.shape[2]:
        raise ValueError(f"calibration logits have {cal_z.shape[2]} outputs, test logits {test_z.shape[2]}")

    temperature = 1.0
    uncalibrated = None
    if calibrate:
        uncalibrated = _member_probs(test_z).mean(axis=0)  # kept so reports can show calibration's effect
        scaler = TemperatureScaler().fit(cal_z, cal_y, member_axis=True)
        temperature = scaler.temperature_
        cal_z, test_z = scaler.transform(cal_z), scaler.transform(test_z)
    cal_members = _member_probs(cal_z)
    test_members = _member_probs(test_z)

    conformal = ConformalClassifier(alpha=alpha, score=score, groupby=groupby, randomized=randomized)
    conformal.fit(cal_members.mean(axis=0), cal_y, cal_groups)
    sets = conformal.predict(test_members.mean(axis=0), test_groups)

    summary = summarize_members(test_members, interval=interval)
    frame = pd.DataFrame(index=range(n_test))
    if test_members.shape[-1] > 2:
        for c in range(test_members.shape[-1]):
            frame[f"p_{c}"] = summary["p"][:, c]
        top = summary["p"].argmax(axis=1)
        for key in ("p", "p_low", "p_high"):
            summary[key] = summary[key][np.arange(n_test), top]
    for key in ("p", "p_low", "p_high", "entropy", "aleatoric", "epistemic"):
        frame[key] = summary[key]
    if uncalibrated is not None and test_members.shape[-1] == 2:
        frame["p_uncal"] = uncalibrated[:, 1]
    frame["conformal_set"] = format_sets(sets)
    frame["abstain"] = sets.sum(axis=1) != 1
    frame.attrs["temperature"] = temperature
    frame.attrs["conformal"] = conformal.quantile_table()
    if conformal.fallbacks_:
        log.info("conformal fallbacks in this fold: %s", conformal.fallbacks_)
    return frame


def _member_probs(z: np.ndarray) -> np.ndarray:
    """`(K, n, 1)` binary logits → `(K, n, 2)`; `(K, n, C)` → softmax `(K, n, C)`."""
    if z.shape[-1] == 1:
        p1 = logits_to_probs(z[..., 0], binary=True)
        return np.stack([1.0 - p1, p1], axis=-1)
    return logits_to_probs(z, binary=False)
