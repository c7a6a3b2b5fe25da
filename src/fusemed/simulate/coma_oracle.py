"""The coma observed-data oracle: P(unfavourable outcome | what the present modalities reveal).

``p_outcome`` (the full-information oracle) conditions on every latent in eta; a subject without PET or
fMRI has no way to show its diffuse metabolism or DMN disconnection, so no model can reach it. The
observed-data oracle ``p_observed`` = E[p_outcome | revealed latents, missing pattern] is the Bayes limit
for that subject instead: the latents each present modality carries (``Coma.carries``) are fixed at the
subject's values, the others are integrated over their prior given the revealed ones.

Premise (an upper bound): a modality that *carries* a latent shows it exactly. Noise, blur, partial
volume and misregistration of the rendered images are not modelled, so what a model can extract from a
modality is at most what the oracle assumes.

Computation (Monte Carlo with likelihood weighting, seeded, deterministic): for each etiology, K prior
draws of severity and of every latent that depends on it (or on nothing revealed). A draw's weight is
the likelihood of the subject's revealed values under it — the same ``distributions`` objects that drew
them — times, under MNAR, the probability of its missing pattern; its outcome probability is p_outcome
with revealed latents at their values and hidden ones at the draw's (the outcome noise is integrated
exactly by p_unfavourable). When every latent of eta is revealed, p_observed is p_outcome itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusemed.simulate.coma import (
    AGE,
    DMN,
    ETIOLOGIES,
    ETIOLOGY_P,
    GCS_MOTOR,
    LESION_P,
    LESION_RADIUS_MM,
    METABOLISM,
    PUPILS,
    SEVERITY_SHIFT,
    Coma,
)
from fusemed.simulate.missingness import missing_probability
from fusemed.simulate.outcome import linear_predictors, p_unfavourable
from fusemed.simulate.scenario import GM_ATROPHY, VENTRICLE_EXPANSION

#: Prior draws per etiology (3 x 100 000): Monte Carlo SD of p_observed about 0.002 on the patterns tested.
N_SAMPLES = 100_000
#: The latents eta reads (``lesion`` stands for its volume); all revealed -> p_observed = p_outcome.
ETA_INPUTS = frozenset({"metabolism", "age", "gcs_motor", "pupils", "etiology", "dmn_disconnection", "lesion"})
#: revealed latent -> the record key eta reads for it (the lesion enters through its volume)
EATS = {"metabolism": "metabolism", "age": "age", "gcs_motor": "gcs_motor", "pupils": "pupils",
        "dmn_disconnection": "dmn_disconnection", "lesion": "lesion_volume_ml"}
#: values at which every term of eta is zero (etiology "" is not anoxic)
ZERO = {"metabolism": 0.55, "age": 50.0, "gcs_motor": 3.0, "pupils": 1.0, "dmn_disconnection": 0.35,
        "lesion_volume_ml": 0.0, "etiology": ""}
#: Severity-driven latents scored by a ClippedNormal of severity when revealed.
BY_SEVERITY = {"metabolism": METABOLISM, "dmn_disconnection": DMN, "gcs_motor": GCS_MOTOR}


def _log(x: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


class ComaPosterior:
    """Prior draws made once per cohort (seed stream ``[seed, 3]``), then :meth:`probability` per subject."""

    def __init__(self, scenario: Coma, n_samples: int = N_SAMPLES) -> None:
        self.scenario = scenario
        self.config = scenario.config
        rng = np.random.default_rng([scenario.config.seed, 3])
        self.prior = {e: self._draw(rng, e, n_samples) for e in ETIOLOGIES}
        surface = scenario.anatomy.surface
        self._mid, self._normal = surface.mid.astype(float), surface.normal.astype(float)
        self._site_p = {e: w / w.sum() for e in ETIOLOGIES for w in [scenario.lesion_site_weights(e)]}
        self._eta_cache: dict[tuple[str, frozenset[str]], np.ndarray] = {}

    @staticmethod
    def _draw(rng: np.random.Generator, etiology: str, n: int) -> dict[str, Any]:
        """n prior draws of the latents eta reads, given the etiology (as ``Coma.draw_latents`` draws them)."""
        severity = rng.normal(SEVERITY_SHIFT[etiology], 1.0, n)
        radius = rng.uniform(*LESION_RADIUS_MM, n)
        lesion = rng.random(n) < LESION_P[etiology]
        return {
            "etiology": etiology,
            "severity": severity,
            "age": AGE.sample(rng, np.zeros(n)),
            "metabolism": METABOLISM.sample(rng, severity),
            "dmn_disconnection": DMN.sample(rng, severity),
            "gcs_motor": GCS_MOTOR.sample(rng, severity),
            "pupils": (rng.random(n) < PUPILS.probability(severity, float(etiology == "anoxic"))).astype(float),
            "lesion_volume_ml": np.where(lesion, 4 / 3 * np.pi * radius**3 / 1000, 0.0),
        }

    def _lesion_likelihood(self, rec: dict[str, Any], etiology: str) -> float:
        """P(the lesion seen | etiology): its presence and its cortical site (its radius is U(10, 28) for all)."""
        if not rec["lesion"]:
            return 1.0 - LESION_P[etiology]
        centre = np.array([rec["lesion_x_mm"], rec["lesion_y_mm"], rec["lesion_z_mm"]])
        # the site vertex: centre = mid[v] - 0.4 * radius * normal[v] (Coma.draw_latents)
        vertex = int(np.argmin(((self._mid - 0.4 * rec["lesion_radius_mm"] * self._normal - centre) ** 2).sum(1)))
        return LESION_P[etiology] * float(self._site_p[etiology][vertex])

    def _log_weight(self, rec: dict[str, Any], known: frozenset[str], draw: dict[str, Any]) -> np.ndarray:
        """log p(revealed values, missing pattern | draw) + log P(etiology), per draw (K,)."""
        e, s = draw["etiology"], draw["severity"]
        lw = np.full(len(s), np.log(ETIOLOGY_P[ETIOLOGIES.index(e)]))
        for name, dist in BY_SEVERITY.items():
            if name in known:
                lw += dist.log_likelihood(rec[name], s)
        if "pupils" in known:
            lw += PUPILS.log_likelihood(rec["pupils"], s, float(e == "anoxic"))
        if "age" not in known and "gm_atrophy" in known:  # a structural image shows age through atrophy
            years = np.maximum(draw["age"] - 20.0, 0.0)
            lw += GM_ATROPHY.log_likelihood(rec["gm_atrophy"], years)
            lw += VENTRICLE_EXPANSION.log_likelihood(rec["ventricle_expansion"], years)
        if "lesion" in known:
            lw += _log(self._lesion_likelihood(rec, e))
        if self.config.missing_scheme == "mnar":  # the pattern itself is evidence about severity
            for mod, shift in self.scenario.mnar_shift({"severity": s}).items():
                q = missing_probability(self.config.missing, shift)
                lw += _log(1.0 - q if rec[f"present_{mod}"] else q)
        return lw

    def probability(self, rec: dict[str, Any]) -> float:
        """p_observed of one subject's record (its latents and ``present_*`` flags)."""
        known = self.scenario.revealed(rec)
        if ETA_INPUTS <= known:
            return float(rec["p_outcome"])
        fixed = {EATS[k]: rec[EATS[k]] for k in EATS if k in known}
        revealed_eta = float(linear_predictors({**ZERO, **fixed}))
        strata = [e for e in self.prior if "etiology" not in known or e == rec["etiology"]]
        log_w = {e: self._log_weight(rec, known, self.prior[e]) for e in strata}
        top = max(float(lw.max()) for lw in log_w.values())
        num = den = 0.0
        for e in strata:
            w = np.exp(log_w[e] - top)
            num += float(w @ p_unfavourable(self._hidden_eta(e, frozenset(fixed)) + revealed_eta))
            den += float(w.sum())
        return num / den

    def _hidden_eta(self, etiology: str, revealed: frozenset[str]) -> np.ndarray:
        """(K,) eta of the draws with the revealed latents' terms at zero (cached per revealed set).

        eta is a sum of one term per latent (``outcome.linear_predictors``), so the subject's eta under a
        draw = this + the revealed latents' terms, computed once per subject."""
        key = (etiology, revealed)
        if key not in self._eta_cache:
            self._eta_cache[key] = linear_predictors({**self.prior[etiology], **{k: ZERO[k] for k in revealed}})
        return self._eta_cache[key]
