"""Reference AUROCs of the coma outcome model from the latents (no images): the numbers quoted in
docs/simulator.md ("Outcome model"): the full-information oracle, logistic regressions on single latents,
and the observed-data oracle (fusemed.simulate.coma_oracle) for chosen sets of present modalities, which
bounds what any fusion of those modalities can reach.

    PYTHONPATH=src python benchmarks/simulate_oracle.py [--subjects 20000] [--observed 3000] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from fusemed.simulate import SimulationConfig, draw_cohort
from fusemed.simulate.coma_oracle import ComaPosterior

#: modality sets for the observed-data oracle rows
OBSERVED = {
    "PET": ("pet",),
    "MRI (T1 + FLAIR)": ("t1", "flair"),
    "PET + MRI": ("t1", "flair", "pet"),
    "clinical": ("clinical",),
    "connectome": ("connectome",),
    "all but PET (and cortex)": ("t1", "flair", "connectome", "clinical"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=20000)
    ap.add_argument("--observed", type=int, default=3000, help="subjects for the observed-data oracle rows")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    scenario, _, recs = draw_cohort(SimulationConfig(scenario="coma", n_subjects=args.subjects, seed=args.seed))
    d = pd.DataFrame(recs)
    y = d["outcome"].to_numpy()

    def cv(*cols: str | np.ndarray) -> np.ndarray:
        x = np.column_stack([d[c] if isinstance(c, str) else c for c in cols])
        return cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=5, method="predict_proba")[:, 1]

    def late(*ps: np.ndarray) -> np.ndarray:
        return expit(np.mean([logit(np.clip(p, 1e-6, 1 - 1e-6)) for p in ps], axis=0))

    pet, mri = cv("pet_cortex_mean"), cv("lesion_volume_ml")
    clinical, dmn = cv("age", "gcs_motor", "pupils", "etiology_anoxic"), cv("dmn_disconnection")
    rows = {
        "oracle p(outcome | latents)": d["p_outcome"],
        "PET cortical mean only": pet,
        "MRI lesion volume only": mri,
        "late fusion PET + MRI": late(pet, mri),
        "clinical": clinical,
        "DMN disconnection only": dmn,
        "late fusion, all four": late(pet, mri, clinical, dmn),
    }
    print(f"coma, {args.subjects} subjects, seed {args.seed}, prevalence {y.mean():.3f}")
    print("| predictor | AUROC |\n|---|---|")
    for name, p in rows.items():
        print(f"| {name} | {roc_auc_score(y, p):.3f} |")
    posterior, sub = ComaPosterior(scenario), recs[: args.observed]
    for name, kept in OBSERVED.items():
        p = [posterior.probability({**r, **{f"present_{m}": int(m in kept) for m in scenario.modalities}})
             for r in sub]
        auc = roc_auc_score([r["outcome"] for r in sub], p)
        print(f"| observed-data oracle, {name} (first {len(sub)} subjects) | {auc:.3f} |")


if __name__ == "__main__":
    main()
