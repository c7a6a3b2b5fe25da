"""``gbsg2``: the German Breast Cancer Study Group 2 trial, 686 node-positive breast-cancer patients.

Source
    Schumacher M, Bastert G, Bojar H, et al. *Randomized 2 × 2 trial evaluating hormonal treatment and the
    duration of chemotherapy in node-positive breast cancer patients.* J Clin Oncol 12(10):2086-2093
    (1994); Sauerbrei W, Royston P. *Building multivariable prognostic and diagnostic models.* J R Stat
    Soc A 162:71-94 (1999). Distributed with the R package ``TH.data`` (GPL-2 or -3) and shipped with
    scikit-survival (``sksurv.datasets.load_gbsg2``, GPL-3.0-or-later package). Known for non-linear
    effects (positive nodes, progesterone receptor) that a linear Cox model misses without transforms.

Cohort layout (686 patients ``gbsg-001`` … ``gbsg-686``, no missing values in the source)
    * ``clinical`` (tabular): age (years), postmenopausal (0/1), hormonal_therapy (0/1, tamoxifen arm).
    * ``tumour`` (tabular): tsize (mm), tgrade (1..3), pnodes (positive lymph nodes).
    * ``receptors`` (tabular): progrec, estrec (progesterone / oestrogen receptor, fmol/l).
    * ``survival`` (survival): ``time`` days of recurrence-free survival, ``event`` 1 = recurrence or
      death (299 events).
    * ``missing > 0``: ``receptors`` is dropped for that share of patients (exact count, MCAR, seeded):
      the assay most often absent from a real record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusemed.datasets._common import DATASETS, blank, check_missing, load_sksurv, mcar_subjects, write_tables

CLINICAL = ["age", "postmenopausal", "hormonal_therapy"]
TUMOUR = ["tsize", "tgrade", "pnodes"]
RECEPTORS = ["progrec", "estrec"]
GRADE = {"I": 1, "II": 2, "III": 3}


def load_gbsg2(out: str | Path, *, seed: int = 0, missing: float = 0.0) -> Path:
    """Write GBSG2 as a cohort folder in ``out``; see the module docstring."""
    missing = check_missing(missing)
    x, y = load_sksurv("gbsg2")
    manifest = pd.DataFrame({"subject": [f"gbsg-{i + 1:03d}" for i in range(len(x))]})
    manifest["age"] = x["age"].to_numpy(float)
    manifest["postmenopausal"] = (x["menostat"].astype(str) == "Post").astype(int)
    manifest["hormonal_therapy"] = (x["horTh"].astype(str) == "yes").astype(int)
    manifest["tsize"] = x["tsize"].to_numpy(float)
    manifest["tgrade"] = x["tgrade"].astype(str).map(GRADE).to_numpy(int)
    manifest["pnodes"] = x["pnodes"].to_numpy(float)
    manifest["progrec"] = x["progrec"].to_numpy(float)
    manifest["estrec"] = x["estrec"].to_numpy(float)
    manifest["time"] = np.asarray(y["time"], dtype=float)
    manifest["event"] = np.asarray(y["cens"], dtype=int)
    blank(manifest, RECEPTORS, mcar_subjects(np.random.default_rng(seed), len(manifest), missing))
    return write_tables(out, "gbsg2", manifest, {"clinical": CLINICAL, "tumour": TUMOUR, "receptors": RECEPTORS},
                        {"survival": {"kind": "survival", "time": "time", "event": "event"}})


DATASETS.register("gbsg2", load_gbsg2)
