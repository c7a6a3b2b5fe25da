"""The value of acquiring one modality: what changes when its plausible values are substituted in.

For a patient and a missing modality m, each of K donor values of m gives the run's answer "after"
(:mod:`fusemed.advise.scorer`). Against the answer "now", three quantities, each the mean over the K draws
with a percentile interval from resampling the draws (bootstrap over donors):

* ``gain`` — expected reduction of total predictive entropy, ``H(now) − E[H(after)]`` (nats). Positive:
  the exam is expected to make the model surer. It can be negative for a model that gets less sure when
  an uninformative modality joins (e.g. late fusion averaging in a logit near 0).
* ``p_singleton`` — probability that the conformal set holds a single label after the exam (the patient is
  no longer abstained on).
* ``p_flip`` — probability that the decision at the run's operating point changes (``p ≥ 0.5`` for a binary
  target, the most probable class for a multiclass one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fusemed.advise.scorer import Inputs, Scorer, decisions, singletons
from fusemed.cohort import Case

#: the interval reported with every mean (percentiles of the bootstrap over donors)
LEVEL = 0.95


@dataclass(frozen=True)
class Substitution:
    """Patient ``patient`` (an index) with modality ``modality`` taken from each of ``donors`` in turn."""

    patient: int
    modality: str
    donors: Sequence[Case]


def answers_after(scorer: Scorer, group: int | None, patients: list[Case],
                  substitutions: list[Substitution]) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The run's columns now (one row per patient) and after each substitution (one row per donor).

    Every substitution of one group is pushed through the folds in one batch per fold.
    """
    used = sorted(scorer.folds) if group is None else [group]
    now: dict[int, list[Inputs]] = {k: [scorer.inputs(p, k) for p in patients] for k in used}
    after: dict[int, list[Inputs]] = {k: [] for k in used}
    for k in used:
        for s in substitutions:
            base = now[k][s.patient]
            after[k] += [{**base, s.modality: scorer.inputs(d, k)[s.modality]} for d in s.donors]
    frame_now = scorer.score(now, group, [p.subject for p in patients])
    frame_after = scorer.score(after, group, [patients[s.patient].subject for s in substitutions for _ in s.donors])
    sizes = np.cumsum([0, *(len(s.donors) for s in substitutions)])
    return frame_now, [frame_after.iloc[a:b].reset_index(drop=True) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]


def _mean_interval(values: np.ndarray, draws: np.ndarray) -> tuple[float, float, float]:
    """Mean of ``values`` ``(K,)`` and the percentile interval of its means over resampled index rows."""
    if np.isnan(values).all():
        return np.nan, np.nan, np.nan
    means = values[draws].mean(axis=1)
    tail = 100 * (1 - LEVEL) / 2
    return float(values.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def value_of(now: pd.DataFrame, after: pd.DataFrame, rng: np.random.Generator, n_boot: int) -> dict[str, float]:
    """The advice of one (patient, modality): ``now`` is the patient's row (1 row), ``after`` one row per donor."""
    k = len(after)
    draws = rng.integers(0, k, size=(n_boot, k))
    entropy_now = float(now["entropy"].iloc[0])
    gain, gain_low, gain_high = _mean_interval(entropy_now - after["entropy"].to_numpy(float), draws)
    single, single_low, single_high = _mean_interval(singletons(after), draws)
    flip, flip_low, flip_high = _mean_interval((decisions(after) != decisions(now)[0]).astype(float), draws)
    return {"entropy_now": entropy_now, "entropy_after": entropy_now - gain,
            "gain": gain, "gain_low": gain_low, "gain_high": gain_high,
            "abstain_now": bool(singletons(now)[0] == 0) if not np.isnan(singletons(now)[0]) else np.nan,
            "p_singleton": single, "p_singleton_low": single_low, "p_singleton_high": single_high,
            "decision_now": int(decisions(now)[0]),
            "p_flip": flip, "p_flip_low": flip_low, "p_flip_high": flip_high}
