"""Plausible values of a missing modality given what is observed: donors matched on the prognostic score.

A patient without modality m is completed with the real m of training subjects who have it ("donors", as in
hot-deck imputation). Which donors? Those who look like the patient *in what the patient shows*. We match on
the run's own prediction from the patient's observed modalities — the prognostic score (Hansen 2008):
every donor is scored by the same fold models after hiding whatever the patient lacks, and the ``k`` donors
whose score is nearest the patient's are kept. Why this and not a distance between feature maps: the score
is the part of the observed data the model uses to predict the outcome, low-dimensional (1 number for a
binary target, C for C classes) so nearest neighbours stay near, and it is defined the same way for every
fusion, baseline and modality kind. If m and the observed modalities are related mainly through the
outcome (the simulator's latents, and the clinical picture), donors with the patient's score carry the
distribution of m the patient's m is drawn from. What it cannot see: structure between m and the observed
modalities that the model ignores — irrelevant to the answer, which is all advise reports.

Donors who show everything the patient shows come first (their score uses the same information); others
only fill the list when there are too few.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: probabilities are clipped before their logarithm (a score of ±13.8 is "certain")
EPS = 1e-6


def prognostic_score(frame: pd.DataFrame) -> np.ndarray:
    """``(n, d)`` the score donors are matched on: logit of ``p`` (binary, d = 1) or log ``p_c`` (C classes)."""
    if "y_pred" in frame:
        probs = frame[[c for c in frame.columns if c.startswith("p_") and c[2:].isdigit()]].to_numpy(float)
        return np.log(np.clip(probs, EPS, 1.0))
    p = np.clip(frame["p"].to_numpy(float), EPS, 1 - EPS)
    return np.log(p / (1 - p))[:, None]


def nearest(score: np.ndarray, donors: np.ndarray, coverage: np.ndarray, k: int,
            rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``k`` donors to use: most coverage of the patient's modalities first, then nearest score.

    Args:
        score: ``(d,)`` the patient's prognostic score.
        donors: ``(n, d)`` the donors' scores from the patient's observed modalities.
        coverage: ``(n,)`` share of the patient's observed modalities each donor has too.
        k: how many donors (fewer when fewer exist).
        rng: breaks exact ties (e.g. donors with the same tabular values) without favouring file order.
    """
    distance = np.linalg.norm(donors - score[None, :], axis=1)
    order = np.lexsort((rng.permutation(len(distance)), np.round(distance, 9), -np.round(coverage, 9)))
    return order[:k]
