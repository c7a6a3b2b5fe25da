"""``aids``: the ACTG 320 trial, 1151 HIV-infected patients randomised to add indinavir or not.

Source
    Hammer SM, Squires KE, Hughes MD, et al. *A controlled trial of two nucleoside analogues plus
    indinavir in persons with human immunodeficiency virus infection and CD4 cell counts of 200 per cubic
    millimeter or less.* N Engl J Med 337:725-733 (1997). The data as in Hosmer DW, Lemeshow S, May S.
    *Applied Survival Analysis*, 2nd ed., Wiley (2008), shipped with scikit-survival
    (``sksurv.datasets.load_aids``, GPL-3.0-or-later package). No explicit licence: distributed by the
    textbook authors for teaching and research; cite the trial and the book when reporting.

Cohort layout (1151 patients ``actg-0001`` … ``actg-1151``, no missing values in the source)
    * ``demographics`` (tabular): age (years), female (0/1), race/ethnicity one-hot against white
      non-Hispanic (black, hispanic, asian_pacific, american_indian), iv_drug_current and
      iv_drug_previous (against never), hemophilia (0/1).
    * ``clinical`` (tabular): karnofsky (70..100), prior_zdv (months of prior zidovudine), indinavir
      (0/1, the randomised arm). The source's ``txgrp`` adds only that 3 patients took d4T instead of
      ZDV: left out.
    * ``immunology`` (tabular): cd4 (baseline CD4 count, cells/mm³), cd4_over_50 (the trial's stratum,
      from the screening count, so it can disagree with ``cd4``).
    * ``survival`` (survival): ``time`` days to an AIDS-defining event or death, ``event`` 1 = event
      (96 events: a censored-heavy outcome, so C-indices carry wide intervals).
    * ``missing > 0``: ``immunology`` is dropped for that share of patients (exact count, MCAR, seeded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusemed.datasets._common import DATASETS, blank, check_missing, load_sksurv, mcar_subjects, write_tables

RACE = {"black": "2", "hispanic": "3", "asian_pacific": "4", "american_indian": "5"}
DEMOGRAPHICS = ["age", "female", *RACE, "iv_drug_current", "iv_drug_previous", "hemophilia"]
CLINICAL = ["karnofsky", "prior_zdv", "indinavir"]
IMMUNOLOGY = ["cd4", "cd4_over_50"]


def load_aids(out: str | Path, *, seed: int = 0, missing: float = 0.0) -> Path:
    """Write ACTG 320 as a cohort folder in ``out``; see the module docstring."""
    missing = check_missing(missing)
    x, y = load_sksurv("aids")
    code = {column: x[column].astype(str) for column in ("sex", "raceth", "ivdrug", "hemophil", "tx", "strat2",
                                                         "karnof")}
    manifest = pd.DataFrame({"subject": [f"actg-{i + 1:04d}" for i in range(len(x))]})
    manifest["age"] = x["age"].to_numpy(float)
    manifest["female"] = (code["sex"] == "2").astype(int)
    for name, level in RACE.items():
        manifest[name] = (code["raceth"] == level).astype(int)
    manifest["iv_drug_current"] = (code["ivdrug"] == "2").astype(int)
    manifest["iv_drug_previous"] = (code["ivdrug"] == "3").astype(int)
    manifest["hemophilia"] = (code["hemophil"] == "1").astype(int)
    manifest["karnofsky"] = pd.to_numeric(code["karnof"]).to_numpy(int)
    manifest["prior_zdv"] = x["priorzdv"].to_numpy(float)
    manifest["indinavir"] = (code["tx"] == "1").astype(int)
    manifest["cd4"] = x["cd4"].to_numpy(float)
    manifest["cd4_over_50"] = (code["strat2"] == "1").astype(int)
    manifest["time"] = np.asarray(y["time"], dtype=float)
    manifest["event"] = np.asarray(y["censor"], dtype=int)
    blank(manifest, IMMUNOLOGY, mcar_subjects(np.random.default_rng(seed), len(manifest), missing))
    views = {"demographics": DEMOGRAPHICS, "clinical": CLINICAL, "immunology": IMMUNOLOGY}
    return write_tables(out, "aids", manifest, views,
                        {"survival": {"kind": "survival", "time": "time", "event": "event"}})


DATASETS.register("aids", load_aids)
