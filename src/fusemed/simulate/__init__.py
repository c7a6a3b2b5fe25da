"""Simulated PET-MR cohorts on real anatomy (epilepsy, coma) with a hidden ground truth.

Parameters are drawn first (`draw_cohort`, one record per subject = one row of `truth/oracle.csv`),
then rendered deterministically (`render_subject`), then written in the cohort contract format.
See docs/simulator.md for the generative model and its sources.
"""

from __future__ import annotations

from fusemed.simulate.api import draw_cohort, simulate_cohort
from fusemed.simulate.config import SimulationConfig
from fusemed.simulate.render import render_subject
from fusemed.simulate.scenario import Scenario

__all__ = ["Scenario", "SimulationConfig", "draw_cohort", "render_subject", "simulate_cohort"]
