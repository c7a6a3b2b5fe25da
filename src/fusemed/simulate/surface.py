"""The cortex modality: MELD-like per-vertex features *measured* from the subject's own images.

A derived modality may only know what its source images carry. So the features are not computed from
the generative model; they go through a documented measurement pipeline, as after FreeSurfer
reconstruction and spherical registration to fsaverage5 (Fischl et al., NeuroImage 1999):

1. **Subject surface.** The template mesh is mapped into the subject's scanner space with the inverse
   of the subject's own warp (`geometry.inverse_warp`), with its local normals; the surface follows
   the healthy anatomy (the reconstruction does not know the lesion).
2. **Registration residual.** Vertex v of fsaverage5 reads the subject's cortex at x(v) + e(x(v)),
   e a smooth random field (5x5x5 cubic B-spline, SD `REGISTRATION_RESIDUAL_MM` per axis): what
   remains of the subject-to-template surface registration error.
3. **Sampling.** T1, FLAIR and PET are read from the subject's rendered images (noise, bias field,
   PET point-spread and residual FLAIR/PET-to-T1 misregistration included), trilinearly, along the
   normal profile through the vertex.
4. **Thickness** = integral of the grey-matter fraction along the profile, the fraction unmixed from
   the T1 intensity with class levels estimated from the same image (white matter: median T1 1 mm
   below the white surface; grey matter: median at mid-thickness), plus a surface-placement error
   N(0, `THICKNESS_ERROR_MM`): FreeSurfer thickness test-retest differences are ~0.12 mm on
   average at 1.5 T (Han et al., NeuroImage 2006, "Reliability of MRI-derived measurements of human
   cerebral cortical thickness"), which the image term alone (partial volume at 2-4 mm) does not show.
5. **Grey/white contrast** = (T1 1 mm below the white surface - T1 at mid-thickness) / their sum;
   **FLAIR** (scanner units / 1000) and **PET** (SUV) at mid-thickness; curvature and sulcal depth of
   the template mesh.

Features (V, 6): `FEATURES`. The cortex exists only for subjects with T1, FLAIR and PET.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusemed.simulate.anatomy import Anatomy
from fusemed.simulate.geometry import control_grid, displacement_at, inverse_warp, sample_image
from fusemed.simulate.render import STREAMS, Rendered, render_subject, streams
from fusemed.simulate.scenario import Scenario
from fusemed.simulate.sites import Site

FEATURES = ("thickness", "gw_contrast", "flair", "pet", "curv", "sulc")
#: Per-vertex surface-placement error of thickness (mm), Han et al. 2006 test-retest.
THICKNESS_ERROR_MM = 0.12
#: SD (mm, per axis) of the smooth residual of the subject-to-fsaverage registration (assumed: a few mm,
#: the scale of residual fold misalignment after spherical registration, Fischl et al. 1999).
REGISTRATION_RESIDUAL_MM = 1.5
#: Profile samples along the normal, spanning mid-thickness +/- (thickness / 2 + PROFILE_MARGIN_MM).
PROFILE_SAMPLES = 13
PROFILE_MARGIN_MM = 1.5
#: (GM - CSF) / (WM - GM) in T1 (intensity.MEANS), used to place the CSF level from the WM and GM levels.
CSF_RATIO = (0.62 - 0.30) / (1.00 - 0.62)
VOLUMES = ("t1", "flair", "pet")


_SURFACES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_WARP_KEYS = ("render_seed", "deform_mm", "brain_scale", "ventricle_expansion", *(
    f"head_{k}{a}_{u}" for k, u in (("r", "deg"), ("t", "mm")) for a in "xyz"))


def _reconstructed(anat: Anatomy, rec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(mid (3, V), unit normal (3, V)) of the cortex in the subject's scanner mm: the template mesh
    through the inverse of the subject's warp (cached per anatomy and warp: rescans share it)."""
    key = (id(anat), *(float(rec[k]) for k in _WARP_KEYS))
    if key not in _SURFACES:
        s = anat.surface
        deform = control_grid(streams(rec)[STREAMS["deform"]], rec["deform_mm"])
        mid_t = s.mid.T.astype(np.float32)
        mid = inverse_warp(mid_t, rec, deform)
        normal = inverse_warp(mid_t + s.normal.T.astype(np.float32), rec, deform) - mid
        if len(_SURFACES) >= 8:
            _SURFACES.pop(next(iter(_SURFACES)))
        _SURFACES[key] = (mid, normal / np.maximum(np.linalg.norm(normal, axis=0, keepdims=True), 1e-6))
    return _SURFACES[key]


def subject_surface(anat: Anatomy, rec: dict[str, Any], replicate: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(points (3, V), unit normal (3, V)) where fsaverage5's vertices read the subject's images, in its
    scanner mm: the reconstructed surface, each vertex displaced by the smooth registration residual."""
    mid, normal = _reconstructed(anat, rec)
    reg = control_grid(streams(rec, replicate)[STREAMS["cortex_registration"]], REGISTRATION_RESIDUAL_MM)
    return mid + displacement_at(reg, mid), normal


def _gm_fraction(t1: np.ndarray, wm: float, gm: float) -> np.ndarray:
    """Partial-volume grey-matter fraction of T1 intensities, from the image's own class levels."""
    csf = gm - CSF_RATIO * (wm - gm)
    above = np.clip((wm - t1) / max(wm - gm, 1e-6), 0, 1)
    below = np.clip((t1 - csf) / max(gm - csf, 1e-6), 0, 1)
    return np.where(t1 >= gm, above, below)


def cortex_features(
    anat: Anatomy,
    scenario: Scenario,
    rec: dict[str, Any],
    site: Site,
    rendered: Rendered | None = None,
    replicate: int = 0,
) -> np.ndarray:
    """(20484, 6) float32 features measured from the subject's rendered images.

    Args:
        rendered: the subject's `render_subject` output (must hold t1, flair and pet); rendered here
            (with noise) when None.
        replicate: the scan-rescan index passed to `render_subject` (0 = the cohort's scan).
    """
    if rendered is None or any(m not in rendered.images for m in VOLUMES):
        rendered = render_subject(anat, scenario, rec, site, VOLUMES, replicate=replicate)
    s = anat.surface
    rng = np.random.default_rng(streams(rec, replicate)[STREAMS["cortex"]])
    mid, normal = subject_surface(anat, rec, replicate)
    half = s.thickness / 2 + PROFILE_MARGIN_MM
    offsets = np.linspace(-1.0, 1.0, PROFILE_SAMPLES)[:, None] * half[None, :]  # (K, V) mm from mid
    step = 2 * half / (PROFILE_SAMPLES - 1)
    pts = mid[:, None, :] + normal[:, None, :] * offsets[None]  # (3, K, V)
    below = mid - normal * (s.thickness / 2 + 1.0)
    images = rendered.images
    profile = sample_image(images["t1"], rendered.grid, pts.reshape(3, -1)).reshape(offsets.shape)
    t1_mid = sample_image(images["t1"], rendered.grid, mid)
    t1_wm = sample_image(images["t1"], rendered.grid, below)
    cortical = s.cortical
    wm_level = float(np.median(t1_wm[cortical]))
    gm_level = float(np.median(t1_mid[cortical]))
    thickness = (_gm_fraction(profile, wm_level, gm_level) * step).sum(0)
    cols = {
        "thickness": thickness + rng.normal(0, THICKNESS_ERROR_MM, thickness.shape),
        "gw_contrast": (t1_wm - t1_mid) / np.maximum(np.abs(t1_wm + t1_mid), 1e-3),
        "flair": sample_image(images["flair"], rendered.grid, mid) / 1000.0,
        "pet": sample_image(images["pet"], rendered.grid, mid),
        "curv": s.curv,
        "sulc": s.sulc,
    }
    return np.stack([np.asarray(cols[c], dtype=np.float32) for c in FEATURES], axis=1)


def lesion_evidence(
    anat: Anatomy, scenario: Scenario, rec: dict[str, Any], site: Site, replicates: int = 8
) -> dict[str, float]:
    """The surface's lesion evidence next to the volume ideal observer's, for one patient record.

    The same lesion is rendered with and without the cortex modality: `replicates` rescans of the
    patient and of the same subject without its lesion (paired noise) give the cortex features'
    matched-filter d' (per-vertex weights = mean paired difference / the feature's noise variance, the
    known-signal filter; d' = mean paired difference of the statistic / its SD over the replicates);
    the noise-free volumes give the ideal observer's d' per modality (`render.lesion_cnr`).
    Keys: `volume_<mod>`, `volume_all`, `surface_<feature>`, `surface_all`, `cnr_<mod>`.
    Data processing forbids surface_all > volume_all beyond estimation noise.
    """
    healthy = dict(rec, diagnosis=0)
    pats, cons = [], []
    for k in range(1, replicates + 1):
        pats.append(cortex_features(anat, scenario, rec, site, replicate=k)[:, :4])
        cons.append(cortex_features(anat, scenario, healthy, site, replicate=k)[:, :4])
    pat, con = np.stack(pats).astype(np.float64), np.stack(cons).astype(np.float64)  # (R, V, F)
    signal = (pat - con).mean(0)  # paired: the lesion's signal through the measurement, (V, F)
    # matched filter per feature: the signal over the feature's noise variance pooled over vertices
    # (pooled, not per vertex: weights fitted to R replicates' per-vertex variances would overfit them)
    noise_var = np.maximum(con.var(0, ddof=1).mean(0), 1e-12)  # (F,)
    weights = signal / noise_var
    s_pat, s_con = (pat * weights).sum(1), (con * weights).sum(1)  # (R, F)
    out: dict[str, float] = {}
    for k, name in enumerate(FEATURES[:4]):
        out[f"surface_{name}"] = float((s_pat[:, k] - s_con[:, k]).mean() / max(s_con[:, k].std(ddof=1), 1e-12))
    # root sum of squares: exact for independent features, an over-estimate here (thickness and
    # grey/white contrast both read T1), so the comparison with the volume errs against the surface
    out["surface_all"] = float(np.sqrt(sum(out[f"surface_{n}"] ** 2 for n in FEATURES[:4])))
    vol = render_subject(anat, scenario, rec, site, ("t1",), noise=False).cnr
    for mod in VOLUMES:
        out[f"volume_{mod}"] = vol[f"detectability_{mod}"]
        out[f"cnr_{mod}"] = vol[f"cnr_{mod}"]
    out["volume_all"] = vol["detectability_all"]
    return out
