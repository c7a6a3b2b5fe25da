"""Functional connectome over the Power 264 ROIs: a network factor model, sampled like real fMRI.

Each ROI's signal loads on its network's factor (loading `NETWORK_LOADING`) and on a global signal;
default-mode disconnection multiplies the DMN loading by sqrt(1 - d), so within-DMN correlations drop
by a factor (1 - d). Correlations are then estimated from `n_timepoints` samples, so estimation noise
is realistic rather than added by hand.
"""

from __future__ import annotations

import numpy as np

NETWORK_LOADING = 0.6
GLOBAL_LOADING = 0.3


def simulate_connectome(
    rng: np.random.Generator, networks: tuple[str, ...], dmn_disconnection: float, n_timepoints: int = 200
) -> np.ndarray:
    """(N, N) float32 Pearson correlation matrix with a zero diagonal."""
    names = sorted(set(networks))
    member = np.array([names.index(n) for n in networks])
    loading = np.full(len(networks), NETWORK_LOADING)
    loading[np.array([n == "unassigned" for n in networks])] = 0.2
    dmn = np.array([n == "DefaultMode" for n in networks])
    loading[dmn] *= np.sqrt(1.0 - dmn_disconnection)
    factors = rng.normal(size=(len(names), n_timepoints))
    glob = rng.normal(size=n_timepoints)
    unique = np.sqrt(np.clip(1 - loading**2 - GLOBAL_LOADING**2, 0.05, None))
    ts = (
        loading[:, None] * factors[member]
        + GLOBAL_LOADING * glob
        + unique[:, None] * rng.normal(size=(len(networks), n_timepoints))
    )
    corr = np.corrcoef(ts).astype(np.float32)
    np.fill_diagonal(corr, 0.0)
    return corr


def dmn_connectivity(adjacency: np.ndarray, networks: tuple[str, ...]) -> float:
    """Mean within-DMN correlation (a summary the tests and docs use)."""
    dmn = np.array([n == "DefaultMode" for n in networks])
    block = adjacency[np.ix_(dmn, dmn)]
    return float(block.sum() / (dmn.sum() * (dmn.sum() - 1)))
