"""Coma scenario: prognosis after severe brain injury (anoxic, traumatic, stroke).

Latent severity drives diffuse cortical hypometabolism (FDG), default-mode disconnection (fMRI) and
the clinical signs (GCS motor, pupils). Traumatic and stroke patients usually carry a focal structural
lesion (T1 hypo-, FLAIR hyperintense) with perilesional hypometabolism and ipsilateral thalamic
hypometabolism (diaschisis). Outcome: see `outcome.py`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusemed.simulate.anatomy import THALAMUS_MM
from fusemed.simulate.distributions import ClippedNormal, Logistic
from fusemed.simulate.outcome import draw_outcome, linear_predictor, p_unfavourable
from fusemed.simulate.scenario import Scenario, pick_vertex
from fusemed.simulate.shapes import soft_sphere

ETIOLOGIES = ("anoxic", "traumatic", "stroke")
ETIOLOGY_P = (0.35, 0.40, 0.25)
SEVERITY_SHIFT = {"anoxic": 0.4, "traumatic": 0.0, "stroke": -0.1}
LESION_P = {"anoxic": 0.10, "traumatic": 0.85, "stroke": 1.0}
LESION_RADIUS_MM = (10.0, 28.0)  # uniform
PERILESIONAL_REACH = 1.8  # perilesional hypometabolism radius / lesion radius
#: The latents driven by severity (and age), each drawn by one of these and scored by the same object in
#: the observed-data oracle (:mod:`fusemed.simulate.coma_oracle`).
AGE = ClippedNormal(52.0, 0.0, 17.0, 18.0, 90.0)
METABOLISM = ClippedNormal(0.62, -0.06, 0.07, 0.2, 1.0)
DMN = ClippedNormal(0.35, 0.18, 0.12, 0.0, 0.95)
GCS_MOTOR = ClippedNormal(3.3, -0.9, 0.9, 1.0, 6.0, rounded=True)
PUPILS = Logistic(1.5, -1.0, shift=-0.8)  # shift: anoxic injury
CLINICAL_COLUMNS = (
    "age",
    "sex",
    *(f"etiology_{e}" for e in ETIOLOGIES),
    "gcs_motor",
    "pupils",
    "days_since_injury",
)


class Coma(Scenario):
    name = "coma"
    modalities: ClassVar[dict[str, dict[str, Any]]] = {
        "t1": {"kind": "volume"},
        "flair": {"kind": "volume"},
        "pet": {"kind": "volume"},
        "connectome": {"kind": "graph"},
        "cortex": {"kind": "surface", "mesh": "fsaverage5"},
        "clinical": {"kind": "tabular", "columns": list(CLINICAL_COLUMNS)},
    }
    targets: ClassVar[dict[str, dict[str, Any]]] = {
        "outcome": {"kind": "binary"},
        "survival": {"kind": "survival", "time": "time_days", "event": "event"},
    }
    clinical_columns = CLINICAL_COLUMNS
    #: What an ideal reader of each modality knows. "lesion" = presence, site and size of the structural
    #: lesion (so its volume); "gm_atrophy"/"ventricle_expansion" show age on any structural image. PET
    #: shows the diffuse metabolism directly (cortex outside the lesion's territory, e.g. contralateral)
    #: and the lesion as a metabolic defect; the connectome shows the DMN disconnection; the cortex is
    #: derived from T1, FLAIR and PET and carries what they do.
    carries: ClassVar[dict[str, tuple[str, ...]]] = {
        "t1": ("lesion", "gm_atrophy", "ventricle_expansion"),
        "flair": ("lesion", "gm_atrophy", "ventricle_expansion"),
        "pet": ("metabolism", "lesion", "gm_atrophy", "ventricle_expansion"),
        "connectome": ("dmn_disconnection",),
        "cortex": ("metabolism", "lesion", "gm_atrophy", "ventricle_expansion"),
        "clinical": ("age", "sex", "etiology", "gcs_motor", "pupils", "days_since_injury"),
    }

    def draw_latents(self, rng: np.random.Generator) -> dict[str, Any]:
        etiology = ETIOLOGIES[int(rng.choice(3, p=ETIOLOGY_P))]
        severity = float(rng.normal(SEVERITY_SHIFT[etiology], 1.0))
        rec: dict[str, Any] = {
            "age": AGE.draw(rng, 0.0),
            "sex": int(rng.random() < 0.62),
            "etiology": etiology,
            **{f"etiology_{e}": int(e == etiology) for e in ETIOLOGIES},
            "severity": severity,
            "days_since_injury": int(rng.integers(5, 31)),
            "metabolism": METABOLISM.draw(rng, severity),
            "dmn_disconnection": DMN.draw(rng, severity),
            "gcs_motor": int(GCS_MOTOR.draw(rng, severity)),
            "pupils": PUPILS.draw(rng, severity, float(etiology == "anoxic")),
        }
        s = self.anatomy.surface
        v = pick_vertex(rng, self.lesion_site_weights(etiology))
        has_lesion = bool(rng.random() < LESION_P[etiology])
        radius = float(rng.uniform(*LESION_RADIUS_MM))
        centre = s.mid[v] - 0.4 * radius * s.normal[v]  # reaching into white matter
        rec.update(
            lesion=int(has_lesion),
            lesion_hemi=("left", "right")[int(s.hemi[v])] if has_lesion else "",
            lesion_x_mm=float(centre[0]) if has_lesion else np.nan,
            lesion_y_mm=float(centre[1]) if has_lesion else np.nan,
            lesion_z_mm=float(centre[2]) if has_lesion else np.nan,
            lesion_radius_mm=radius if has_lesion else 0.0,
            lesion_volume_ml=float(4 / 3 * np.pi * radius**3 / 1000) if has_lesion else 0.0,
            perilesional_depth=float(rng.uniform(0.3, 0.6)) if has_lesion else 0.0,
            thalamic_depth=float(np.clip(0.35 * radius / 28 * rng.uniform(0.7, 1.3), 0, 0.5)) if has_lesion else 0.0,
            hemispheric_depth=float(rng.uniform(0.1, 0.35)) if has_lesion else 0.0,
        )
        rec["explained_hypometabolism"] = self.explained_loss(rec)
        rec["pet_cortex_mean"] = rec["metabolism"] * (1 - rec["explained_hypometabolism"])
        rec["eta"] = linear_predictor(rec)
        rec["p_outcome"] = p_unfavourable(rec["eta"])
        rec.update(draw_outcome(rng, rec["eta"]))
        return rec

    def lesion_site_weights(self, etiology: str) -> np.ndarray:
        """(V,) unnormalised probability of each fsaverage5 vertex being the lesion's cortical site."""
        s = self.anatomy.surface
        if etiology == "stroke":  # middle cerebral artery territory, lateral
            weight = (np.abs(s.mid[:, 0]) > 30) & (s.mid[:, 1] > -50) & (s.mid[:, 1] < 30)
        else:  # contusions: frontal and temporal poles
            weight = (s.mid[:, 1] > 10) | (s.mid[:, 2] < -5)
        return (weight.astype(float) + 0.05) * s.cortical

    def lesion_metabolism(self, xt: np.ndarray, rec: dict[str, Any]) -> np.ndarray:
        """(N,) metabolism factor explained by the structural lesion: perilesional rim, ipsilateral
        hemispheric diaschisis and ipsilateral thalamic diaschisis (1 = untouched)."""
        if not rec["lesion"]:
            return np.ones(xt.shape[1], dtype=np.float32)
        c = np.array([rec["lesion_x_mm"], rec["lesion_y_mm"], rec["lesion_z_mm"]], dtype=np.float32)
        peri = soft_sphere(xt, c, PERILESIONAL_REACH * rec["lesion_radius_mm"], edge=4.0)
        side = 1.0 if rec["lesion_hemi"] == "right" else -1.0
        hemi = 1 / (1 + np.exp(np.clip(-side * xt[0] / 3.0, -50, 50)))
        thal = soft_sphere(xt, THALAMUS_MM[rec["lesion_hemi"]], 9.0, edge=2.0)
        return (
            (1 - rec["perilesional_depth"] * peri)
            * (1 - rec["hemispheric_depth"] * hemi)
            * (1 - rec["thalamic_depth"] * thal)
        ).astype(np.float32)

    def explained_loss(self, rec: dict[str, Any]) -> float:
        """Share of normal cortical metabolism lost to the lesion, averaged over fsaverage5 vertices:
        what separates the PET-visible cortical mean from the diffuse `metabolism`."""
        s = self.anatomy.surface
        return float(1 - self.lesion_metabolism(s.mid[s.cortical].T, rec).mean())

    def modify(self, fields: dict[str, np.ndarray], xt: np.ndarray, rec: dict[str, Any]) -> None:
        mult = np.full_like(fields["gm"], rec["metabolism"])
        if not rec["lesion"]:
            fields["lesion"] = np.zeros_like(fields["gm"])
            fields["pet_mult"] = mult
            return
        c = np.array([rec["lesion_x_mm"], rec["lesion_y_mm"], rec["lesion_z_mm"]], dtype=np.float32)
        r = rec["lesion_radius_mm"]
        w = soft_sphere(xt, c, r, edge=1.5) * np.clip(fields["gm"] + fields["wm"], 0, 1)
        fields["les"] = w
        fields["gm"], fields["wm"] = fields["gm"] * (1 - w), fields["wm"] * (1 - w)
        fields["pet_mult"] = mult * self.lesion_metabolism(xt, rec)
        fields["lesion"] = w / 0.5

    def thickness_factor(self, xt: np.ndarray, rec: dict[str, Any]) -> np.ndarray:
        if not rec["lesion"]:
            return super().thickness_factor(xt, rec)
        c = np.array([rec["lesion_x_mm"], rec["lesion_y_mm"], rec["lesion_z_mm"]], dtype=np.float32)
        return 1.0 - 0.8 * soft_sphere(xt, c, rec["lesion_radius_mm"], edge=1.5)

    def target_values(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {"outcome": rec["outcome"], "time_days": rec["time_days"], "event": rec["event"]}

    def observed_oracle(self, records: list[dict[str, Any]]) -> list[float]:
        from fusemed.simulate.coma_oracle import ComaPosterior

        posterior = ComaPosterior(self)
        return [posterior.probability(rec) for rec in records]

    def mnar_shift(self, rec: dict[str, Any]) -> dict[str, float]:
        # The sickest are not moved to the PET scanner; agitated (less severe) patients move in fMRI.
        return {"pet": 1.2 * rec["severity"], "connectome": -1.0 * rec["severity"]}
