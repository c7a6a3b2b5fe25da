"""Epilepsy scenario: controls and patients with one focal-cortical-dysplasia-like lesion.

The lesion (type II FCD signature, Blumcke et al. 2011; Colombo et al. 2003) sits at the grey/white
junction under a cortical vertex (frontal lobe favoured), radius 5-15 mm:
- T1: blurred grey/white junction (tissue maps mixed with their 2 mm-smoothed copy) and cortical
  thickening (white matter turned into grey matter near the junction);
- FLAIR: subcortical hyperintensity, tapering from the lesion toward the ventricle (transmantle sign);
- FDG-PET: hypometabolism over a wider area than the MRI lesion (Chassoux et al. 2010).
Amplitudes are drawn low so that most lesions are MRI-negative (CNR below the threshold on T1 and
FLAIR); the CNR of each lesion on each modality is recorded in the truth.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusemed.simulate.anatomy import VENTRICLE_MM
from fusemed.simulate.scenario import Scenario, pick_vertex
from fusemed.simulate.shapes import soft_sphere, tapered_tube

FRONTAL_WEIGHT = 3.0  # frontal vertices are this much more likely lesion sites


class Epilepsy(Scenario):
    name = "epilepsy"
    modalities: ClassVar[dict[str, dict[str, Any]]] = {
        "t1": {"kind": "volume"},
        "flair": {"kind": "volume"},
        "pet": {"kind": "volume"},
        "cortex": {"kind": "surface", "mesh": "fsaverage5"},
        "clinical": {"kind": "tabular", "columns": ["age", "sex"]},
    }
    targets: ClassVar[dict[str, dict[str, Any]]] = {
        "diagnosis": {"kind": "binary"},
        "lesion": {"kind": "mask", "reference": "t1"},
        "lesion_surface": {"kind": "vertex_mask", "mesh": "fsaverage5"},
    }
    clinical_columns = ("age", "sex")
    records_cnr = True

    def draw_latents(self, rng: np.random.Generator) -> dict[str, Any]:
        patient = bool(rng.random() < self.config.patient_fraction)
        rec: dict[str, Any] = {
            "diagnosis": int(patient),
            "p_diagnosis": float(patient),
            "age": float(np.clip(rng.normal(30, 12), 6, 70)),
            "sex": int(rng.random() < 0.5),
        }
        s = self.anatomy.surface
        frontal = (s.mid[:, 1] > -5) & (s.mid[:, 2] > -15)
        v = pick_vertex(rng, np.where(frontal, FRONTAL_WEIGHT, 1.0) * s.cortical)
        radius = float(rng.uniform(5, 15))
        centre = s.mid[v] - (s.thickness[v] / 2) * s.normal[v]  # at the grey/white junction
        rec.update(
            lesion_vertex=v if patient else -1,
            lesion_hemi=("left", "right")[int(s.hemi[v])] if patient else "",
            lesion_x_mm=float(centre[0]) if patient else np.nan,
            lesion_y_mm=float(centre[1]) if patient else np.nan,
            lesion_z_mm=float(centre[2]) if patient else np.nan,
            lesion_radius_mm=radius if patient else np.nan,
            lesion_frontal=bool(frontal[v]) if patient else False,
            blur=float(rng.uniform(0.15, 0.7)) if patient else 0.0,
            thickening=float(rng.uniform(0.05, 0.35)) if patient else 0.0,
            flair_amp=float(rng.uniform(0.01, 0.08)) if patient else 0.0,
            pet_amp=float(rng.uniform(0.10, 0.30)) if patient else 0.0,
            pet_spread=float(rng.uniform(1.3, 2.0)) if patient else 0.0,
        )
        return rec

    def _centre(self, rec: dict[str, Any]) -> np.ndarray:
        return np.array([rec["lesion_x_mm"], rec["lesion_y_mm"], rec["lesion_z_mm"]], dtype=np.float32)

    def modify(self, fields: dict[str, np.ndarray], xt: np.ndarray, rec: dict[str, Any]) -> None:
        if not rec["diagnosis"]:
            fields["lesion"] = np.zeros_like(fields["gm"])
            return
        c, r = self._centre(rec), rec["lesion_radius_mm"]
        w = soft_sphere(xt, c, r)
        gm, wm = fields["gm"], fields["wm"]
        gm = gm + w * rec["blur"] * (fields["gm_blur"] - gm)
        wm = wm + w * rec["blur"] * (fields["wm_blur"] - wm)
        junction = 4 * fields["gm_blur"] * fields["wm_blur"]
        moved = w * rec["thickening"] * wm * np.clip(junction, 0, 1)
        fields["gm"], fields["wm"] = gm + moved, wm - moved
        tube = tapered_tube(xt, c, VENTRICLE_MM[rec["lesion_hemi"]], 0.5 * r, 1.5)
        fields["flair_add"] = rec["flair_amp"] * np.maximum(w, tube) * np.clip(fields["wm"] + 0.5 * fields["gm"], 0, 1)
        pet = soft_sphere(xt, c, rec["pet_spread"] * r, edge=3.0)
        fields["pet_mult"] = 1.0 - rec["pet_amp"] * pet
        fields["lesion"] = w * np.clip(fields["gm"] + fields["wm"], 0, 1) / 0.5  # tissue part of the sphere

    def thickness_factor(self, xt: np.ndarray, rec: dict[str, Any]) -> np.ndarray:
        if not rec["diagnosis"]:
            return super().thickness_factor(xt, rec)
        return 1.0 + 2 * rec["thickening"] * soft_sphere(xt, self._centre(rec), rec["lesion_radius_mm"])

    def target_values(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {"diagnosis": rec["diagnosis"]}

    def mnar_shift(self, rec: dict[str, Any]) -> dict[str, float]:
        # Healthy volunteers are rarely given an FDG-PET: PET goes missing mostly in controls.
        return {"pet": 0.0 if rec["diagnosis"] else 2.0}
