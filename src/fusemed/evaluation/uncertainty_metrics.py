"""Calibration, selective-prediction and conformal-set metrics (one function per metric).

Conventions: `y` `(n,)` integer labels; `probs` either `(n,)` = P(class 1) of a binary task or `(n, C)`.
Definitions follow /work/shared/guide/REFERENCES.md; each docstring says which variant is computed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_curve

_EPS = 1e-12


def _probs2d(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=float)
    return np.stack([1.0 - probs, probs], axis=1) if probs.ndim == 1 else probs


def _top_label(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence of the predicted class `(n,)` and whether it is right `(n,)` (top-label, argmax)."""
    p = _probs2d(probs)
    return p.max(axis=1), (p.argmax(axis=1) == np.asarray(y)).astype(float)


def ece(y: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Top-label expected calibration error, Guo et al. 2017: M equal-width bins ((m−1)/M, m/M],
    ECE = Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)|, empty bins skipped. For binary `(n,)` input the top label
    is the more probable class (confidence max(p, 1−p)).
    """
    conf, correct = _top_label(y, probs)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin m holds edges[m] < conf ≤ edges[m+1]
    bins = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    total = 0.0
    for m in np.unique(bins):
        in_bin = bins == m
        total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(total)


def adaptive_ece(y: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Top-label adaptive ECE with equal-mass bins (torch-uncertainty's aECE, variant (a) of REFERENCES.md):
    subjects sorted by confidence are split into `n_bins` bins of (near) equal count; same sum as `ece`.
    Not Nixon's class-wise ACE.
    """
    conf, correct = _top_label(y, probs)
    order = np.argsort(conf, kind="stable")
    total = 0.0
    for idx in np.array_split(order, min(n_bins, len(order))):
        if len(idx):
            total += len(idx) / len(conf) * abs(correct[idx].mean() - conf[idx].mean())
    return float(total)


def brier(y: np.ndarray, probs: np.ndarray) -> float:
    """Brier score. Binary `(n,)`: (1/n)Σ(p − y)² ∈ [0, 1].
    Multiclass `(n, C)`: (1/n)Σ_i Σ_k (p_ik − 1[y_i=k])² ∈ [0, 2]
    (note: a binary task passed as `(n, 2)` gives twice the binary value).
    """
    probs = np.asarray(probs, dtype=float)
    y = np.asarray(y)
    if probs.ndim == 1:
        return float(np.mean((probs - y) ** 2))
    onehot = np.eye(probs.shape[1])[y.astype(int)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def nll(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood −log p̂_y (natural log, probabilities clamped at 1e-12). For an ensemble
    pass the member-averaged probability."""
    p = _probs2d(probs)
    p_true = p[np.arange(len(p)), np.asarray(y).astype(int)]
    return float(-np.mean(np.log(np.clip(p_true, _EPS, 1.0))))


def _aurc_from(confidence: np.ndarray, error: np.ndarray) -> float:
    order = np.argsort(-confidence, kind="stable")
    conf, err = confidence[order], error[order]
    # tied confidences form one point: the risk at the end of a tie block applies to all its members
    last_of_block = np.r_[conf[1:] != conf[:-1], True]
    k = np.arange(1, len(conf) + 1)
    risk = np.cumsum(err) / k
    block_end = np.flatnonzero(last_of_block)
    sizes = np.diff(np.r_[-1, block_end])
    return float(np.sum(sizes * risk[block_end]) / len(conf))


def aurc(y: np.ndarray, probs: np.ndarray, confidence: np.ndarray | None = None) -> float:
    """Area under the risk–coverage curve (Geifman & El-Yaniv): sort by confidence (default: top-label
    probability) descending; r(k) = top-label errors among the k most confident / k;
    AURC = (1/n)Σ_k r(k), where a block of tied confidences is one point whose risk counts for each member.
    Lower is better; the 0/1 error rate alone gives AURC = error rate."""
    conf, correct = _top_label(y, probs)
    conf = conf if confidence is None else np.asarray(confidence, dtype=float)
    return _aurc_from(conf, 1.0 - correct)


def e_aurc(y: np.ndarray, probs: np.ndarray, confidence: np.ndarray | None = None) -> float:
    """Excess AURC: `aurc` minus the AURC of the perfect ranking (all correct predictions first)."""
    _, correct = _top_label(y, probs)
    perfect = _aurc_from(correct + np.linspace(0.0, 0.5, len(correct))[::-1], 1.0 - correct)
    return aurc(y, probs, confidence) - perfect


def sens_at_spec(y: np.ndarray, p: np.ndarray, spec: float = 0.95, positive: int = 1) -> float:
    """Sensitivity for the `positive` class (poor outcome) at specificity ≥ `spec` (0.95 or 1.0, the coma
    prognosis reporting norm): the best TPR over thresholds whose FPR ≤ 1 − spec (sklearn `roc_curve`,
    "score ≥ threshold is positive"). `p` `(n,)` is the score of the positive class. NaN if y has one class.
    """
    y = np.asarray(y) == positive
    if y.all() or not y.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(y, np.asarray(p, dtype=float), drop_intermediate=False)
    return float(tpr[fpr <= (1.0 - spec) + 1e-12].max())


def coverage(sets: np.ndarray, y: np.ndarray) -> float:
    """Share of subjects whose conformal set `(n, C)` bool contains the true label."""
    sets = np.asarray(sets, dtype=bool)
    return float(sets[np.arange(len(sets)), np.asarray(y).astype(int)].mean())


def mean_set_size(sets: np.ndarray) -> float:
    """Average number of labels in the conformal sets `(n, C)` bool."""
    return float(np.asarray(sets, dtype=bool).sum(axis=1).mean())


def integrated_brier(
    survival: np.ndarray, event: np.ndarray, time: np.ndarray, times: np.ndarray, ipcw: bool = True
) -> float:
    """Integrated Brier score of survival predictions (Graf 1999), computed by torchsurv.

    Args:
        survival: `(n, T)` predicted P(event-free at times[j]) per subject.
        event: `(n,)` bool, True if the event was observed.
        time: `(n,)` event or censoring time.
        times: `(T,)` increasing evaluation times inside the follow-up.
        ipcw: weight by the inverse probability of censoring (Kaplan–Meier of the censoring times).
    """
    from torchsurv.metrics.brier_score import BrierScore
    from torchsurv.stats.ipcw import get_ipcw

    ev = torch.as_tensor(np.asarray(event, dtype=bool))
    t = torch.as_tensor(np.asarray(time, dtype=float))
    new_t = torch.as_tensor(np.asarray(times, dtype=float))
    est = torch.as_tensor(np.asarray(survival, dtype=float))
    kwargs = {}
    if ipcw:
        kwargs = {"weight": get_ipcw(ev, t), "weight_new_time": get_ipcw(ev, t, new_t)}
    metric = BrierScore()
    metric(est, ev, t, new_time=new_t, **kwargs)
    return float(metric.integral())


def per_group(
    metric: Callable[..., float], groups: Sequence[Hashable], *arrays: np.ndarray, **kwargs: object
) -> dict[str, float]:
    """Evaluate `metric(*arrays_restricted_to_group, **kwargs)` for each group; `{group: value}`."""
    groups = np.asarray([str(g) for g in groups], dtype=object)
    return {g: metric(*(np.asarray(a)[groups == g] for a in arrays), **kwargs) for g in dict.fromkeys(groups)}
