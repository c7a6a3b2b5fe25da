"""Survival curves from a Cox model's log-risks, and the integrated Brier score of out-of-fold curves.

A Cox head predicts only a relative log-risk; turning it into S(t | x) needs a baseline hazard, estimated
by Breslow's method (torchsurv) on held-out subjects of the same fold (its calibration split), so the
out-of-fold curves never see the subjects they score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchsurv.loss.cox import baseline_survival_function, survival_function_cox

from fusemed.evaluation.uncertainty_metrics import integrated_brier

#: (log-risk (n,), time (n,), event (n,)) of one split
SurvivalSplit = tuple[np.ndarray, np.ndarray, np.ndarray]


def cox_survival_curves(reference: SurvivalSplit, log_hz: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``(n, T)`` S(t | x) at ``times`` for subjects with ``log_hz``, Breslow baseline from ``reference``."""
    ref_hz, ref_time, ref_event = (torch.as_tensor(np.asarray(a, dtype=float)) for a in reference)
    baseline = baseline_survival_function(ref_hz, ref_event.bool(), ref_time)
    curves = survival_function_cox(
        baseline, torch.as_tensor(np.asarray(log_hz, dtype=float)), torch.as_tensor(np.asarray(times, dtype=float))
    )
    return curves.reshape(len(log_hz), len(times)).numpy()


def out_of_fold_integrated_brier(
    references: Sequence[SurvivalSplit], tests: Sequence[SurvivalSplit], n_times: int = 20
) -> dict[str, float | None]:
    """IPCW integrated Brier score of the pooled out-of-fold survival curves (Graf 1999).

    Each fold's test curves use that fold's reference baseline. The time grid spans the 10th to 80th
    percentile of observed test times, where the censoring weights are still estimable.

    Returns:
        ``{"integrated_brier": value or None, "ibs_t_min": ..., "ibs_t_max": ...}`` (None when a fold has no
        event in its reference split, so no baseline can be estimated).
    """
    time = np.concatenate([t for _, t, _ in tests]).astype(float)
    event = np.concatenate([e for _, _, e in tests]).astype(bool)
    if not event.any() or any(not np.asarray(e).astype(bool).any() for _, _, e in references):
        return {"integrated_brier": None, "ibs_t_min": None, "ibs_t_max": None}
    grid = np.unique(np.quantile(time, np.linspace(0.1, 0.8, n_times)))
    curves = np.concatenate(
        [cox_survival_curves(ref, hz, grid) for ref, (hz, _, _) in zip(references, tests, strict=True)]
    )
    value = integrated_brier(curves, event, time, grid)
    return {
        "integrated_brier": value if np.isfinite(value) else None,
        "ibs_t_min": float(grid[0]),
        "ibs_t_max": float(grid[-1]),
    }
