"""Coma outcome model: time to recovery of consciousness, the 3-month outcome, p(outcome | latents).

    log T = log T0 + eta + sigma * eps,    eps ~ N(0, 1)   (T in days from imaging)
    outcome = 1 (unfavourable) <=> T > 90 days,  so  p = 1 - Phi((log 90 - log T0 - eta) / sigma)

eta (log-days) adds the clinical and imaging latents. The metabolic term uses the cortical
metabolism *outside* the structural lesion's territory (`metabolism`), not what a PET scan alone
shows: hypometabolism explained by a lesion visible on T1/FLAIR (the lesion, its perilesional rim
and the thalamic diaschisis) is permanent but local and does not predict non-recovery; diffuse
hypometabolism below ~42 % of normal does (Stender et al. 2016). The PET cortical mean mixes the two;
PET read spatially separates them on its own (the lesion is a metabolic defect, the contralateral cortex
shows `metabolism`), so the observed-data oracle gives PET + MRI no edge over PET alone
(docs/simulator.md). Fixed before benchmarking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

T0_DAYS = 60.0
SIGMA = 1.0
HORIZON_DAYS = 90.0
FOLLOW_UP_DAYS = 365.0
#: eta coefficients (log-days per unit); see docs/simulator.md for the sources.
COEF = {
    "metabolism": 0.6,  # per 0.1 below 0.55 of normal
    "age": 0.25,  # per 15 years above 50
    "gcs_motor": -0.15,  # per point above 3
    "pupils_absent": 0.35,
    "anoxic": 0.25,
    "dmn": 0.3,  # per 0.2 of DMN disconnection above 0.35
    "lesion_volume": 0.25,  # per 50 mL of structural lesion
}


def linear_predictor(rec: dict[str, Any]) -> float:
    """eta for one subject's latents (larger = later recovery)."""
    return float(linear_predictors(rec))


def linear_predictors(rec: dict[str, Any]) -> np.ndarray | float:
    """eta where any latent may be an array of hypothetical values (the observed-data oracle's samples)."""
    return (
        COEF["metabolism"] * (0.55 - rec["metabolism"]) / 0.1
        + COEF["age"] * (rec["age"] - 50) / 15
        + COEF["gcs_motor"] * (rec["gcs_motor"] - 3)
        + COEF["pupils_absent"] * (1 - rec["pupils"])
        + COEF["anoxic"] * (rec["etiology"] == "anoxic")
        + COEF["dmn"] * (rec["dmn_disconnection"] - 0.35) / 0.2
        + COEF["lesion_volume"] * rec["lesion_volume_ml"] / 50
    )


def p_unfavourable(eta: float | np.ndarray) -> float | np.ndarray:
    """P(T > 90 days | latents) = P(outcome = 1 | latents); elementwise for an array of eta."""
    p = 1.0 - ndtr((np.log(HORIZON_DAYS) - np.log(T0_DAYS) - eta) / SIGMA)
    return float(p) if np.ndim(p) == 0 else p


def draw_outcome(rng: np.random.Generator, eta: float) -> dict[str, Any]:
    """Recovery time, its censored observation (1 year, 10 % lost to follow-up) and the outcome."""
    t = float(np.exp(np.log(T0_DAYS) + eta + SIGMA * rng.normal()))
    lost = rng.random() < 0.10
    censor = float(rng.uniform(14, FOLLOW_UP_DAYS)) if lost else FOLLOW_UP_DAYS
    return {
        "recovery_days_true": round(t, 2),
        "time_days": round(min(t, censor), 2),
        "event": int(t <= censor),
        "outcome": int(t > HORIZON_DAYS),
    }
