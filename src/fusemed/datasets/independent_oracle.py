"""The observed-data oracle of the ``independent`` generator: P(outcome | what the present data reveal).

``p_outcome = sigmoid(eta)`` conditions on every latent; a subject without perfusion cannot show its blob,
and under MNAR its missing pattern is itself evidence about its risk. ``p_observed`` is the Bayes limit for
that subject instead, the number a share of the oracle should be measured against at 25 % missing
(issue 14's definition, written here for the second generator):

    p_observed = E[sigmoid(eta) | revealed latents, missing pattern]

Premise (an upper bound): a present modality shows the latent it carries exactly — perfusion the blob,
the connectome the signal edge, the table ``marker`` and ``age_z`` where their cells are filled (the
anatomy carries none). The blob's smooth noise, the edge's small noise and the marker's 0.1 SD measurement
error are not integrated, so a model can at most reach it.

Computation (Monte Carlo with likelihood weighting, seeded, deterministic): K prior draws of the four
latents (independent standard normals); for each subject the revealed ones are set to its values, and
each draw is weighted by the probability of the subject's missing pattern under the generator's MNAR model
(:func:`pattern_probability`, the keep-one rule included). When every latent is revealed, eta is known and
p_observed is p_outcome itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

#: prior draws (Monte Carlo SD of p_observed below 0.002 on the patterns tested)
N_SAMPLES = 200_000
#: the latents eta reads, in the order of ``risk_logit``'s arguments
LATENTS = ("blob", "edge", "marker", "age_z")


def pattern_probability(q: np.ndarray, n_dropped: int, n_modalities: int) -> np.ndarray:
    """P(a given pattern with ``n_dropped`` modalities dropped | each is dropped with probability ``q``).

    The generator drops each modality independently, then gives a subject that lost all of them one back
    (uniformly): a pattern with a single modality present also arises that way."""
    p = q**n_dropped * (1.0 - q) ** (n_modalities - n_dropped)
    if n_dropped == n_modalities - 1:
        p = p + q**n_modalities / n_modalities
    return p


def observed_oracle(latents: np.ndarray, revealed: np.ndarray, n_dropped: np.ndarray, n_modalities: int,
                    risk: Callable[..., np.ndarray], drop_probability: Callable[[np.ndarray], np.ndarray] | None,
                    *, seed: int = 0, n_samples: int = N_SAMPLES) -> np.ndarray:
    """``p_observed`` per subject.

    Args:
        latents: ``(n, 4)`` the subjects' latents in :data:`LATENTS` order.
        revealed: ``(n, 4)`` booleans, True where a present modality (and filled cell) shows that latent.
        n_dropped: ``(n,)`` modalities missing per subject.
        n_modalities: how many modalities the generator could drop.
        risk: ``risk_logit(blob, edge, marker, age_z)``.
        drop_probability: eta -> each modality's drop probability (MNAR), or None without missingness.
    """
    rng = np.random.default_rng([seed, 14])
    prior = rng.standard_normal((len(LATENTS), n_samples))
    out = np.empty(len(latents))
    for k, (values, shown) in enumerate(zip(latents, revealed, strict=True)):
        args = [np.full(n_samples, v) if s else draw for v, s, draw in zip(values, shown, prior, strict=True)]
        eta = risk(*args)
        if shown.all():  # eta is known: the weights cancel
            out[k] = float(expit(eta[0]))
            continue
        w = (np.ones(n_samples) if drop_probability is None
             else pattern_probability(drop_probability(eta), int(n_dropped[k]), n_modalities))
        out[k] = float(w @ expit(eta) / w.sum())
    return out
