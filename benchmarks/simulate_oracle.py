"""Reference AUROCs of the coma outcome model from the latents (no images): the numbers quoted in
docs/simulator.md ("Outcome model"). Shows the oracle limit and the joint-vs-late fusion gap that
the PET x MRI interaction creates.

    PYTHONPATH=src python benchmarks/simulate_oracle.py [--subjects 20000] [--seed 0]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    _, _, recs = draw_cohort(SimulationConfig(scenario="coma", n_subjects=args.subjects, seed=args.seed))
    d = pd.DataFrame(recs)
    y = d["outcome"].to_numpy()

    def cv(*cols: str | np.ndarray) -> np.ndarray:
        x = np.column_stack([d[c] if isinstance(c, str) else c for c in cols])
        return cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=5, method="predict_proba")[:, 1]

    def late(*ps: np.ndarray) -> np.ndarray:
        return expit(np.mean([logit(np.clip(p, 1e-6, 1 - 1e-6)) for p in ps], axis=0))

    corrected = d["pet_cortex_mean"] / (1 - d["explained_hypometabolism"])
    pet, mri = cv("pet_cortex_mean"), cv("lesion_volume_ml")
    clinical, dmn = cv("age", "gcs_motor", "pupils", "etiology_anoxic"), cv("dmn_disconnection")
    rows = {
        "oracle p(outcome | latents)": d["p_outcome"],
        "PET cortical mean only": pet,
        "MRI lesion volume only": mri,
        "late fusion PET + MRI": late(pet, mri),
        "joint PET + MRI": cv("pet_cortex_mean", "lesion_volume_ml", "explained_hypometabolism", corrected),
        "clinical": clinical,
        "DMN disconnection only": dmn,
        "late fusion, all four": late(pet, mri, clinical, dmn),
        "joint, all": cv(
            corrected, "lesion_volume_ml", "age", "gcs_motor", "pupils", "etiology_anoxic", "dmn_disconnection"
        ),
    }
    print(f"coma, {args.subjects} subjects, seed {args.seed}, prevalence {y.mean():.3f}")
    print("| predictor | AUROC |\n|---|---|")
    for name, p in rows.items():
        print(f"| {name} | {roc_auc_score(y, p):.3f} |")


if __name__ == "__main__":
    main()
