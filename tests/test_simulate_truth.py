"""The truth table: oracle AUROC as documented, outcome model consistent, missingness as configured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fusemed.simulate import SimulationConfig, draw_cohort
from fusemed.simulate.outcome import HORIZON_DAYS, p_unfavourable

#: Stated in docs/simulator.md ("Oracle"), computed from 20 000 draws with seed 0.
DOCUMENTED_ORACLE_AUROC = 0.84
DOCUMENTED_PREVALENCE = 0.38


@pytest.fixture(scope="module")
def coma_records() -> pd.DataFrame:
    _, _, recs = draw_cohort(SimulationConfig(scenario="coma", n_subjects=1500, seed=5))
    return pd.DataFrame(recs)


def test_oracle_auroc_matches_docs(coma_records):
    o = coma_records
    # 1500 subjects: AUROC standard error ~0.01, prevalence ~0.013
    assert abs(roc_auc_score(o["outcome"], o["p_outcome"]) - DOCUMENTED_ORACLE_AUROC) < 0.03
    assert abs(o["outcome"].mean() - DOCUMENTED_PREVALENCE) < 0.04
    assert abs(o["p_outcome"].mean() - o["outcome"].mean()) < 0.04, "p(outcome|latents) is calibrated"


def test_outcome_follows_recovery_time(coma_records):
    o = coma_records
    assert ((o["recovery_days_true"] > HORIZON_DAYS) == (o["outcome"] == 1)).all()
    assert (o["time_days"] <= 365).all() and (o["time_days"] <= o["recovery_days_true"] + 1e-6).all()
    assert 0.6 < o["event"].mean() < 0.95
    assert np.allclose(o["p_outcome"], [p_unfavourable(e) for e in o["eta"]])


def test_unexplained_hypometabolism_drives_outcome(coma_records):
    """The PET cortical mean predicts outcome much better once the lesion-explained loss is divided out
    (what a spatial reading of PET, or PET with MRI, can do); lesion volume alone barely predicts."""
    o = coma_records
    pet_only = roc_auc_score(o["outcome"], -o["pet_cortex_mean"])
    corrected = roc_auc_score(o["outcome"], -o["pet_cortex_mean"] / (1 - o["explained_hypometabolism"]))
    assert corrected > pet_only + 0.03
    assert np.allclose(o["pet_cortex_mean"] / (1 - o["explained_hypometabolism"]), o["metabolism"])
    assert abs(roc_auc_score(o["outcome"], o["lesion_volume_ml"]) - 0.5) < 0.1


def _rates(scheme: str, rate: float, n: int = 1200, scenario: str = "coma") -> pd.DataFrame:
    _, _, recs = draw_cohort(
        SimulationConfig(scenario=scenario, n_subjects=n, seed=9, missing=rate, missing_scheme=scheme, sites=3),
        observed=False,  # rates only: the observed-data oracle is tested in test_simulate_observed.py
    )
    return pd.DataFrame(recs)


def test_mcar_rates_within_binomial_tolerance():
    rate, n = 0.3, 1200
    o = _rates("mcar", rate, n)
    tol = 4 * np.sqrt(rate * (1 - rate) / n)
    for mod in ("t1", "flair", "pet", "connectome", "clinical"):
        assert abs(1 - o[f"present_{mod}"].mean() - rate) < tol, mod
    present = o[[c for c in o.columns if c.startswith("present_")]]
    assert (present.sum(axis=1) > 0).all(), "never a subject with nothing"
    derived = o["present_t1"] & o["present_flair"] & o["present_pet"]
    assert (o["present_cortex"] == derived).all()


def test_never_a_subject_with_nothing_at_high_rate():
    o = _rates("mcar", 0.9, 400)
    present = o[[c for c in o.columns if c.startswith("present_")]]
    assert (present.sum(axis=1) > 0).all()


def test_mnar_sickest_lose_pet_and_agitated_lose_fmri():
    o = _rates("mnar", 0.3)
    sick = o["severity"] > o["severity"].quantile(2 / 3)
    mild = o["severity"] < o["severity"].quantile(1 / 3)
    assert (1 - o.loc[sick, "present_pet"].mean()) > (1 - o.loc[mild, "present_pet"].mean()) + 0.2
    assert (1 - o.loc[mild, "present_connectome"].mean()) > (1 - o.loc[sick, "present_connectome"].mean()) + 0.15


def test_site_protocols_remove_modalities():
    o = _rates("site", 0.0, 300)
    assert o.loc[o["site"] == "B", "present_flair"].sum() == 0
    assert o.loc[o["site"] == "C", "present_pet"].sum() == 0
    assert o.loc[o["site"] == "A", ["present_flair", "present_pet"]].all().all()


def test_drawing_is_deterministic():
    a = _rates("mcar", 0.2, 30, "epilepsy")
    b = _rates("mcar", 0.2, 30, "epilepsy")
    pd.testing.assert_frame_equal(a, b)
