"""The cortex modality: MELD-like per-vertex features on fsaverage5, as after surface reconstruction
and registration (so the subject's warp is already undone; the features live on the template mesh).

Features (V, 6): thickness (mm), grey/white contrast, FLAIR and PET sampled at mid-thickness,
curvature, sulcal depth. The cortex exists only for subjects with T1, FLAIR and PET.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusemed.simulate.anatomy import Anatomy
from fusemed.simulate.geometry import sample
from fusemed.simulate.intensity import tissue_image
from fusemed.simulate.render import STREAMS, apply_atrophy, streams
from fusemed.simulate.scenario import Scenario
from fusemed.simulate.sites import Site

FEATURES = ("thickness", "gw_contrast", "flair", "pet", "curv", "sulc")
#: Measurement noise SD per feature at the reference noise level (scaled by site noise).
FEATURE_NOISE = {"thickness": 0.2, "gw_contrast": 0.02, "flair": 0.03, "pet": 0.05}
_CACHE: dict[int, tuple] = {}


def _template_at_vertices(anat: Anatomy) -> tuple:
    if id(anat) not in _CACHE:
        s = anat.surface
        mid = s.mid.T.astype(np.float32)
        below = (s.mid - (s.thickness[:, None] / 2 + 1.0) * s.normal).T.astype(np.float32)
        _CACHE[id(anat)] = (mid, below, sample(anat, mid, (mid.shape[1],)), sample(anat, below, (mid.shape[1],)))
    return _CACHE[id(anat)]


def _modified(scenario: Scenario, fields: dict, pts: np.ndarray, rec: dict) -> dict:
    f = dict(fields)
    apply_atrophy(f, rec)
    scenario.modify(f, pts, rec)
    f.pop("lesion")
    return f


def cortex_features(anat: Anatomy, scenario: Scenario, rec: dict[str, Any], site: Site) -> np.ndarray:
    """(20484, 6) float32 features for one subject."""
    mid, below, f_mid, f_below = _template_at_vertices(anat)
    rng = np.random.default_rng(streams(rec)[STREAMS["cortex"]])
    fm, fb = _modified(scenario, f_mid, mid, rec), _modified(scenario, f_below, below, rec)
    t1_mid, t1_wm = tissue_image(fm, "t1"), tissue_image(fb, "t1")
    level = site.mr_noise / 0.035
    v = mid.shape[1]
    thick = anat.surface.thickness * (1 - 0.5 * rec["gm_atrophy"]) * scenario.thickness_factor(mid, rec)
    cols = {
        "thickness": thick + rng.normal(0, FEATURE_NOISE["thickness"] * level, v),
        "gw_contrast": (t1_wm - t1_mid) / np.maximum(t1_wm + t1_mid, 1e-3)
        + rng.normal(0, FEATURE_NOISE["gw_contrast"] * level, v),
        "flair": tissue_image(fm, "flair") * site.mr_scale / 1000 + rng.normal(0, FEATURE_NOISE["flair"] * level, v),
        "pet": (tissue_image(fm, "pet") + rng.normal(0, FEATURE_NOISE["pet"], v)) * site.pet_scale,
        "curv": anat.surface.curv,
        "sulc": anat.surface.sulc,
    }
    return np.stack([np.asarray(cols[c], dtype=np.float32) for c in FEATURES], axis=1)
