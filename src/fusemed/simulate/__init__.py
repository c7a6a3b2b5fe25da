"""Simulated PET-MR cohorts on real anatomy (epilepsy, coma) with a hidden ground truth.

Parameters are drawn first (`draw_cohort`, one record per subject = one row of `truth/oracle.csv`),
then rendered deterministically (`render_subject`), then written in the cohort contract format.
See docs/simulator.md for the generative model and its sources.
"""

from __future__ import annotations

from fusemed.simulate import coma as _coma  # noqa: F401  (registers the scenario)
from fusemed.simulate import epilepsy as _epilepsy  # noqa: F401
from fusemed.simulate.api import draw_cohort, simulate_cohort
from fusemed.simulate.config import SimulationConfig
from fusemed.simulate.render import render_subject
from fusemed.simulate.scenario import Scenario

__all__ = ["Scenario", "SimulationConfig", "draw_cohort", "render_subject", "simulate_cohort"]
