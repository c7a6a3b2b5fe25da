"""``flchain``: serum free light chains and mortality in 7874 residents of Olmsted County, Minnesota.

Source
    Dispenzieri A, Katzmann JA, Kyle RA, et al. *Use of nonclonal serum immunoglobulin free light
    chains to predict overall survival in the general population.* Mayo Clin Proc 87(6):517-523 (2012);
    Kyle RA et al., N Engl J Med 354:1362-1369 (2006). Distributed with the R package ``survival``
    (LGPL-2 or later) and shipped with scikit-survival (``sksurv.datasets.load_flchain``,
    GPL-3.0-or-later package). Pick a subset when reporting: the R documentation notes it is a random
    half of the original study's subjects.

Genuine missing values
    Serum creatinine was not measured for 1350 subjects (17 %): the ``renal`` view is absent for them in
    the source itself, not by any choice of the loader.

Cohort layout (7874 subjects ``flc-0001`` … ``flc-7874``)
    * ``demographics`` (tabular): age (years), sex (0 female, 1 male), sample_yr (year of the blood
      sample).
    * ``flc`` (tabular): kappa and lambda (free light chain portions, mg/dl), flc_grp (decile group
      1..10 of the total FLC), mgus (1 = diagnosed with monoclonal gammopathy).
    * ``renal`` (tabular): creatinine (mg/dl), genuinely missing for 1350 subjects.
    * ``survival`` (survival): ``futime`` days from enrolment to death or last contact, ``death`` 1 = died
      (2169 deaths). No binary target: follow-up ends at different times for the censored.
    * Left out: ``chapter``, the ICD chapter of the cause of death, which is known only after the event
      (it would leak the outcome).
    * ``missing > 0``: ``flc`` is also dropped for that share of subjects (exact count, MCAR, seeded);
      ``demographics`` is always present, so no subject has nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusemed.datasets._common import DATASETS, blank, check_missing, load_sksurv, mcar_subjects, write_tables

DEMOGRAPHICS = ["age", "sex", "sample_yr"]
FLC = ["kappa", "lambda", "flc_grp", "mgus"]
RENAL = ["creatinine"]


def load_flchain(out: str | Path, *, seed: int = 0, missing: float = 0.0) -> Path:
    """Write FLCHAIN as a cohort folder in ``out``; see the module docstring."""
    missing = check_missing(missing)
    x, y = load_sksurv("flchain")
    manifest = pd.DataFrame({"subject": [f"flc-{i + 1:04d}" for i in range(len(x))]})
    manifest["age"] = x["age"].to_numpy(float)
    manifest["sex"] = (x["sex"].astype(str) == "M").astype(int)
    manifest["sample_yr"] = pd.to_numeric(x["sample.yr"].astype(str))
    manifest["kappa"] = x["kappa"].to_numpy(float)
    manifest["lambda"] = x["lambda"].to_numpy(float)
    manifest["flc_grp"] = pd.to_numeric(x["flc.grp"].astype(str))
    manifest["mgus"] = (x["mgus"].astype(str) == "yes").astype(int)
    manifest["creatinine"] = x["creatinine"].to_numpy(float)
    manifest["futime"] = np.asarray(y["futime"], dtype=float)
    manifest["death"] = np.asarray(y["death"], dtype=int)
    blank(manifest, FLC, mcar_subjects(np.random.default_rng(seed), len(manifest), missing))
    return write_tables(out, "flchain", manifest, {"demographics": DEMOGRAPHICS, "flc": FLC, "renal": RENAL},
                        {"survival": {"kind": "survival", "time": "futime", "event": "death"}})


DATASETS.register("flchain", load_flchain)
