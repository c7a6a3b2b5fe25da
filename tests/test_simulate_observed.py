"""The observed-data oracle (``p_observed``): the Bayes limit given what a subject's present modalities show.

Drawn without rendering (``draw_cohort``), on a few hundred subjects: complete subjects get ``p_outcome``
exactly, removing modalities lowers the oracle's AUROC, and the oracle is the conditional mean of
``p_outcome`` (calibrated against it within each missing pattern, MNAR included).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fusemed.simulate import SimulationConfig, draw_cohort
from fusemed.simulate.coma_oracle import ComaPosterior

#: Modalities kept, most to least: each step removes what carries one of eta's latents.
NESTED = (
    ("t1", "flair", "pet", "connectome", "cortex", "clinical"),
    ("t1", "flair", "pet", "clinical"),  # no DMN disconnection
    ("t1", "flair", "clinical"),  # no diffuse metabolism
    ("t1", "flair"),  # no clinical signs, age only through atrophy
)


@pytest.fixture(scope="module")
def complete():
    scenario, _, recs = draw_cohort(SimulationConfig(scenario="coma", n_subjects=300, seed=21), observed=False)
    return scenario, recs


def _keep(recs: list[dict], scenario, modalities: tuple[str, ...]) -> list[dict]:
    return [{**r, **{f"present_{m}": int(m in modalities) for m in scenario.modalities}} for r in recs]


def test_equals_p_outcome_when_every_modality_is_present(complete):
    scenario, recs = complete
    p = scenario.observed_oracle(recs)
    assert p == [r["p_outcome"] for r in recs]  # exactly, not approximately


def test_written_by_draw_cohort_and_exact_on_complete_subjects():
    _, _, recs = draw_cohort(SimulationConfig(scenario="coma", n_subjects=40, seed=2, missing=0.3))
    o = pd.DataFrame(recs)
    assert o["p_observed"].between(0, 1).all()
    full = o[[f"present_{m}" for m in NESTED[0]]].all(axis=1)
    assert full.any() and (~full).any()
    assert (o.loc[full, "p_observed"] == o.loc[full, "p_outcome"]).all()
    assert not np.allclose(o.loc[~full, "p_observed"], o.loc[~full, "p_outcome"])


def test_auroc_drops_as_modalities_are_removed(complete):
    scenario, recs = complete
    posterior = ComaPosterior(scenario, n_samples=40_000)
    y = np.array([r["outcome"] for r in recs])
    aurocs = [roc_auc_score(y, [posterior.probability(r) for r in _keep(recs, scenario, kept)]) for kept in NESTED]
    assert all(a > b for a, b in zip(aurocs[:-1], aurocs[1:], strict=True)), aurocs
    assert aurocs[0] - aurocs[-1] > 0.1, aurocs


def test_is_the_conditional_mean_of_p_outcome_under_mnar():
    """E[p_outcome | observed] = p_observed: within each pattern of (PET, fMRI) presence, which MNAR ties to
    severity, the means agree, and p_outcome regresses on p_observed with slope 1."""
    config = SimulationConfig(scenario="coma", n_subjects=300, seed=12, missing=0.5, missing_scheme="mnar")
    scenario, _, recs = draw_cohort(config, observed=False)
    o = pd.DataFrame(recs)
    posterior = ComaPosterior(scenario, n_samples=40_000)
    o["p_observed"] = [posterior.probability(r) for r in recs]
    for _, group in o.groupby(["present_pet", "present_connectome"]):
        se = (group["p_outcome"] - group["p_observed"]).std() / np.sqrt(len(group))
        assert abs(group["p_outcome"].mean() - group["p_observed"].mean()) < 4 * se + 0.005
    slope = np.polyfit(o["p_observed"], o["p_outcome"], 1)[0]
    assert 0.9 < slope < 1.1


def test_missing_pattern_is_evidence_under_mnar(complete):
    """Under MNAR the sickest lose their PET: a missing PET raises the oracle's probability, other things equal."""
    scenario, recs = complete
    kept = _keep(recs[:60], scenario, ("t1", "flair", "connectome", "clinical"))  # PET missing, fMRI present
    mcar = ComaPosterior(scenario, n_samples=20_000)
    scenario_mnar = type(scenario)(SimulationConfig(scenario="coma", n_subjects=1, seed=21, missing=0.3,
                                                    missing_scheme="mnar"), scenario.anatomy)
    mnar = ComaPosterior(scenario_mnar, n_samples=20_000)
    shift = np.array([mnar.probability(r) - mcar.probability(r) for r in kept])
    assert shift.mean() > 0.01 and (shift > 0).mean() > 0.8
