"""``whas500``: the Worcester Heart Attack Study, 500 patients after acute myocardial infarction.

Source
    Hosmer DW, Lemeshow S, May S. *Applied Survival Analysis*, 2nd ed., Wiley (2008): a 500-patient
    subset of the Worcester Heart Attack Study (Goldberg RJ et al., University of Massachusetts Medical
    School). Shipped with scikit-survival (``sksurv.datasets.load_whas500``; the package is GPL-3.0-or-
    later). The data carry no explicit licence: the textbook authors distribute them for teaching and
    research; cite the book when reporting results.

Cohort layout (500 subjects ``whas-001`` … ``whas-500``, no missing values in the source)
    * ``clinical`` (tabular, 10 columns): age (years), gender (0 male, 1 female), bmi (kg/m²), and the
      0/1 history/presentation flags cvd (cardiovascular disease), afb (atrial fibrillation), sho
      (cardiogenic shock), chf (congestive heart complications), av3 (complete heart block), miord
      (1 = recurrent MI), mitype (1 = Q-wave MI).
    * ``vitals`` (tabular, 4 columns): hr (initial heart rate, bpm), sysbp and diasbp (initial blood
      pressures, mmHg), los (length of hospital stay, days — known only at discharge).
    * ``survival`` (survival): ``lenfol`` days from admission to last follow-up, ``fstat`` 1 = died
      (215 deaths).
    * ``death_1y`` (binary): died within 365 days of admission. Well defined for every patient: nobody is
      censored before day 365 (the loader checks this), so 0 means "alive at one year".
    * ``missing > 0``: ``vitals`` is dropped for that share of patients (exact count, MCAR, seeded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusemed.datasets._common import DATASETS, blank, check_missing, load_sksurv, mcar_subjects, write_tables

CLINICAL = ["age", "gender", "bmi", "cvd", "afb", "sho", "chf", "av3", "miord", "mitype"]
VITALS = ["hr", "sysbp", "diasbp", "los"]
HORIZON_DAYS = 365


def load_whas500(out: str | Path, *, seed: int = 0, missing: float = 0.0) -> Path:
    """Write WHAS500 as a cohort folder in ``out``; see the module docstring."""
    missing = check_missing(missing)
    x, y = load_sksurv("whas500")
    time, event = np.asarray(y["lenfol"], dtype=float), np.asarray(y["fstat"], dtype=bool)
    if np.any(~event & (time < HORIZON_DAYS)):  # a 1-year label needs everyone followed for a year
        raise ValueError("whas500: a patient is censored before one year; death_1y would be undefined")
    manifest = pd.DataFrame({"subject": [f"whas-{i + 1:03d}" for i in range(len(x))]})
    for column in CLINICAL + VITALS:
        manifest[column] = pd.to_numeric(x[column].astype(str) if x[column].dtype == "category" else x[column])
    manifest["lenfol"] = time
    manifest["fstat"] = event.astype(int)
    manifest["death_1y"] = (event & (time <= HORIZON_DAYS)).astype(int)
    blank(manifest, VITALS, mcar_subjects(np.random.default_rng(seed), len(manifest), missing))
    return write_tables(out, "whas500", manifest, {"clinical": CLINICAL, "vitals": VITALS},
                        {"survival": {"kind": "survival", "time": "lenfol", "event": "fstat"},
                         "death_1y": {"kind": "binary"}})


DATASETS.register("whas500", load_whas500)
