"""Epilepsy scenario: controls and patients with one focal cortical dysplasia (FCD) of a drawn type.

Appearance per ILAE type (Blumcke et al., Epilepsia 2011), amplitudes in `FCD_TYPES` (sources in
docs/simulator.md): type I: mild blurring of the grey/white junction, no thickening, faint FLAIR;
type IIa: thickening, blurring, FLAIR hyperintensity, sometimes a transmantle sign; type IIb: the
same, stronger, with a transmantle sign in most (Colombo et al., Neuroradiology 2012). FDG-PET
hypometabolism, wider than the MRI lesion, in most lesions (Chassoux et al., Neurology 2010). The
lesion sits at the grey/white junction under a cortical vertex (frontal lobe favoured), radius 5-15 mm.
Whether a lesion is MRI-negative is measured after rendering (peak CNR on T1 and FLAIR, `render`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusemed.simulate.anatomy import VENTRICLE_MM
from fusemed.simulate.scenario import Scenario, pick_vertex
from fusemed.simulate.shapes import soft_sphere, tapered_tube

FRONTAL_WEIGHT = 3.0  # frontal vertices are this much more likely lesion sites
#: Per type: share of patients, then U(lo, hi) ranges of junction blurring (mixing weight with the 2 mm
#: smoothed tissue maps), thickening (share of junctional WM turned to GM), FLAIR hyperintensity (fraction
#: of the WM signal), P(transmantle sign), P(PET hypometabolism), its depth and its reach (x radius).
FCD_TYPES: dict[str, dict[str, Any]] = {
    "I": {"share": 0.25, "blur": (0.05, 0.30), "thickening": (0.0, 0.0), "flair": (0.0, 0.015),
          "transmantle": 0.0, "pet": 0.80, "pet_amp": (0.10, 0.25), "pet_spread": (1.5, 2.5)},
    "IIa": {"share": 0.35, "blur": (0.05, 0.40), "thickening": (0.0, 0.20), "flair": (0.0, 0.03),
            "transmantle": 0.20, "pet": 0.85, "pet_amp": (0.10, 0.30), "pet_spread": (1.3, 2.0)},
    "IIb": {"share": 0.40, "blur": (0.05, 0.60), "thickening": (0.0, 0.30), "flair": (0.005, 0.06),
            "transmantle": 0.60, "pet": 0.85, "pet_amp": (0.10, 0.30), "pet_spread": (1.3, 2.0)},
}


def _draw_fcd(rng: np.random.Generator) -> dict[str, Any]:
    """The lesion's type and amplitudes (every value drawn, in a fixed order, even when unused)."""
    names = list(FCD_TYPES)
    shares = np.array([FCD_TYPES[n]["share"] for n in names])
    kind = names[int(np.searchsorted(np.cumsum(shares) / shares.sum(), rng.random(), side="right"))]
    t = FCD_TYPES[kind]
    draw = {k: float(rng.uniform(*t[k])) for k in ("blur", "thickening", "pet_amp", "pet_spread")}
    flair, transmantle, pet = float(rng.uniform(*t["flair"])), rng.random() < t["transmantle"], rng.random() < t["pet"]
    return {
        "fcd_type": kind,
        "blur": draw["blur"],
        "thickening": draw["thickening"],
        "flair_amp": flair,
        "transmantle": int(transmantle),
        "pet_amp": draw["pet_amp"] if pet else 0.0,
        "pet_spread": draw["pet_spread"],
    }


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
        )
        fcd = _draw_fcd(rng)
        rec.update(fcd if patient else {k: ("" if k == "fcd_type" else 0 * v) for k, v in fcd.items()})
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
        extent = w
        if rec.get("transmantle", 1):
            extent = np.maximum(w, tapered_tube(xt, c, VENTRICLE_MM[rec["lesion_hemi"]], 0.5 * r, 1.5))
        fields["flair_add"] = rec["flair_amp"] * extent * np.clip(fields["wm"] + 0.5 * fields["gm"], 0, 1)
        pet = soft_sphere(xt, c, rec["pet_spread"] * r, edge=3.0)
        fields["pet_mult"] = 1.0 - rec["pet_amp"] * pet
        fields["lesion"] = w * np.clip(fields["gm"] + fields["wm"], 0, 1) / 0.5  # tissue part of the sphere

    def target_values(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {"diagnosis": rec["diagnosis"]}

    def mnar_shift(self, rec: dict[str, Any]) -> dict[str, float]:
        # Healthy volunteers are rarely given an FDG-PET: PET goes missing mostly in controls.
        return {"pet": 0.0 if rec["diagnosis"] else 2.0}
