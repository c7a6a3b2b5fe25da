"""The two oracles of a simulated cohort and the share of their margin a model reaches.

``truth/oracle.csv`` may hold two probabilities per subject:

- ``p_outcome``, the *full-information* oracle: P(outcome | every latent). With modalities missing no
  model can reach it, so its share says little at 30–60 % missing.
- ``p_observed``, the *observed-data* oracle: P(outcome | what the subject's present modalities reveal,
  its missing pattern) — the achievable limit (:mod:`fusemed.simulate.coma_oracle`).

Share of an oracle's margin = (model AUROC − 0.5) / (oracle AUROC − 0.5) on the same subjects; per
missing pattern it is computed on that pattern's subjects, against the observed-data oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fusemed.evaluation.stats import auroc

#: prefix of every oracle row's name (reports style and sort them apart from runs)
ORACLE = "ORACLE"
#: truth column -> the row label it gets, full information first
ORACLES = {"p_outcome": f"{ORACLE} (full information)", "p_observed": f"{ORACLE} (observed data)"}
CHANCE = 0.5


def share(score: float, oracle_score: float) -> float:
    """(score − chance) / (oracle − chance): 1 = as good as the oracle, 0 = chance; NaN when the oracle
    itself is no better than chance on these subjects (no margin to share)."""
    if not np.isfinite(oracle_score) or oracle_score <= CHANCE:
        return np.nan
    return float((score - CHANCE) / (oracle_score - CHANCE))


def oracle_columns(truth: pd.DataFrame | None) -> dict[str, str]:
    """The oracle columns ``truth`` holds, with their labels."""
    return {c: label for c, label in ORACLES.items() if truth is not None and c in truth.columns}


def pattern_oracle(group: pd.DataFrame, truth: pd.DataFrame | None, min_per_class: int = 2) -> float:
    """AUROC of the observed-data oracle on ``group``'s subjects (``subject, y_true``); NaN without it."""
    if truth is None or "p_observed" not in truth.columns:
        return np.nan
    merged = group[["subject", "y_true"]].merge(truth[["subject", "p_observed"]], on="subject", how="inner")
    merged = merged.dropna(subset=["p_observed"])
    counts = merged["y_true"].value_counts()
    if len(counts) < 2 or counts.min() < min_per_class:
        return np.nan
    return float(auroc(merged["y_true"].to_numpy(), merged["p_observed"].to_numpy()))
