"""``independent``: a second synthetic generator, written apart from ``fusemed.simulate``.

Why
    Results measured only on data from the package's own simulator may reflect what that simulator
    happens to make easy. This generator was written without reading or importing ``fusemed.simulate``
    and places its signal differently: a *non-linear* effect in one small region of one volume, the
    label signal in a *single edge* of a graph, a thresholded (hinge) effect in one table column, and
    missingness that depends on the outcome risk (MNAR).

Generative model (all per subject, independent standard normals unless stated)
    * latents: ``blob`` (perfusion blob amplitude, signed), ``edge`` (one connection's strength),
      ``marker`` (a lab value), ``age_z`` (standardised age).
    * risk logit ``eta = -0.7 + 1.2 (blob² - 1) + 2.5 edge + 1.2 max(marker, 0) + 0.3 age_z`` (about 45 %
      positives). ``outcome ~ Bernoulli(sigmoid(eta))``; ``truth/oracle.csv`` holds
      ``p_outcome = sigmoid(eta)``, the best any model given every latent can do (AUROC ≈ 0.91), and
      ``p_observed``, the observed-data oracle (:mod:`fusemed.datasets.independent_oracle`): the best any
      model can do given the subject's present modalities and missing pattern. The blob enters squared:
      hyper- and hypo-perfusion both raise the risk, so the mean intensity of the region is
      uninformative on its own.

Modalities
    * ``anatomy`` (volume, 16³, 3 mm voxels, RAS affine centred on the grid): an ellipsoidal "brain"
      with smooth multiplicative noise. Carries no label signal (a distractor).
    * ``perfusion`` (volume, same grid): the brain with smooth noise plus a Gaussian blob (σ 1.5
      voxels) at voxel (10, 5, 8) whose peak is ``0.6 · blob``.
    * ``connectome`` (graph, 20 nodes, ``.npz`` ``adjacency``, symmetric): a template drawn once per seed
      (≈ 80 % of edges, weights 0.3-1) with log-normal per-subject noise (σ 0.5) on every present edge,
      plus the edge (3, 17), whose weight is ``0.6 + 0.2 · edge`` plus small noise. Node degrees (row
      sums) dilute that edge among ≈ 15 noisy edges, so they carry almost none of the signal.
    * ``clinical`` (tabular): ``age`` (years, from ``age_z``; 5 % of cells empty), ``sex`` (0/1, no
      effect), ``marker`` (``marker`` + small noise; 10 % empty), ``score`` (pure noise; 10 % empty).
    * ``outcome`` (binary).

Missingness (MNAR)
    Each modality is dropped with probability ``sigmoid(alpha + 1.0 · z(eta))``, where ``z(eta)`` is
    the standardised risk logit and ``alpha`` (one for all modalities) is set so the expected share equals ``missing``:
    high-risk subjects lack modalities more often. A subject drawn missing in everything keeps one
    modality (chosen uniformly). ``truth/latents.csv`` records the latents, ``eta`` and which
    modalities were dropped; ``truth/model.json`` the coefficients and signal locations.

Deterministic for a given ``(seed, subjects, missing)``: the same call writes identical files.
Source: generated, no external data; licence: that of fusemed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from fusemed.cohort import CohortSpec, write_cohort
from fusemed.datasets._common import DATASETS, check_missing
from fusemed.datasets.independent_oracle import observed_oracle
from fusemed.io import atomic_save, atomic_write_csv, atomic_write_json

GRID = 16
VOXEL_MM = 3.0
BLOB_CENTRE = (10, 5, 8)
BLOB_SIGMA = 1.5
BLOB_PEAK = 0.6
N_NODES = 20
SIGNAL_EDGE = (3, 17)
COEF = {"intercept": -0.7, "blob_squared": 1.2, "edge": 2.5, "marker_hinge": 1.2, "age_z": 0.3}
MNAR_SLOPE = 1.0
MODALITIES = ("anatomy", "perfusion", "connectome", "clinical")
TABLE = ["age", "sex", "marker", "score"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def risk_logit(blob: np.ndarray, edge: np.ndarray, marker: np.ndarray, age_z: np.ndarray) -> np.ndarray:
    """The true risk logit ``eta`` of the generative model."""
    return (COEF["intercept"] + COEF["blob_squared"] * (blob**2 - 1) + COEF["edge"] * edge
            + COEF["marker_hinge"] * np.maximum(marker, 0.0) + COEF["age_z"] * age_z)


def drop_probability(eta: np.ndarray, missing: float) -> Callable[[np.ndarray], np.ndarray] | None:
    """The MNAR model: risk logit -> each modality's drop probability, mean ``missing`` over this cohort.

    ``sigmoid(alpha + slope z(eta))`` with ``z`` standardised on the cohort's eta and ``alpha`` found by
    bisection; None without missingness. A function, so the observed-data oracle weighs any eta by it."""
    if missing <= 0:
        return None
    mean, sd = float(eta.mean()), float(eta.std() or 1.0)
    z = (eta - mean) / sd
    lo, hi = -30.0, 30.0  # bisection on the intercept: E[sigmoid(alpha + slope z)] = missing
    for _ in range(100):
        alpha = 0.5 * (lo + hi)
        lo, hi = (alpha, hi) if _sigmoid(alpha + MNAR_SLOPE * z).mean() < missing else (lo, alpha)
    return lambda e: _sigmoid(alpha + MNAR_SLOPE * (e - mean) / sd)


def _mnar_masks(rng: np.random.Generator, eta: np.ndarray, missing: float) -> np.ndarray:
    """``(n, len(MODALITIES))`` booleans, True = dropped; risk-dependent, mean share ``missing``."""
    n = len(eta)
    q = drop_probability(eta, missing)
    if q is None:
        return np.zeros((n, len(MODALITIES)), dtype=bool)
    dropped = rng.random((n, len(MODALITIES))) < q(eta)[:, None]
    keep = rng.integers(len(MODALITIES), size=n)
    everything = dropped.all(axis=1)
    dropped[everything, keep[everything]] = False
    return dropped


def _affine() -> np.ndarray:
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    affine[:3, 3] = -VOXEL_MM * (GRID - 1) / 2
    return affine


def _brain() -> np.ndarray:
    idx = np.indices((GRID,) * 3, dtype=float)
    c = (GRID - 1) / 2
    r = ((idx[0] - c) / 6.5) ** 2 + ((idx[1] - c) / 7.5) ** 2 + ((idx[2] - c) / 6.0) ** 2
    return np.where(r <= 1.0, 1.0, 0.1)


def _blob() -> np.ndarray:
    idx = np.indices((GRID,) * 3, dtype=float)
    d2 = sum((idx[k] - BLOB_CENTRE[k]) ** 2 for k in range(3))
    return np.exp(-d2 / (2 * BLOB_SIGMA**2))


def _smooth_noise(rng: np.random.Generator, sd: float) -> np.ndarray:
    field = gaussian_filter(rng.standard_normal((GRID,) * 3), sigma=2.0, mode="wrap")
    return sd * field / field.std()


def _save_nifti(path: Path, data: np.ndarray) -> None:
    img = nib.Nifti1Image(data.astype(np.float32), _affine())
    img.header.set_xyzt_units("mm")
    atomic_save(path, lambda tmp: nib.save(img, str(tmp)))


def _template(rng: np.random.Generator) -> np.ndarray:
    present = np.triu(rng.random((N_NODES, N_NODES)) < 0.8, k=1)
    weights = np.triu(rng.uniform(0.3, 1.0, (N_NODES, N_NODES)), k=1) * present
    i, j = SIGNAL_EDGE
    weights[i, j] = 0.0  # the signal edge is drawn per subject
    return weights


def generate_independent(out: str | Path, *, seed: int = 0, missing: float = 0.0, subjects: int = 200) -> Path:
    """Write the independent synthetic cohort (see the module docstring) into ``out``."""
    missing = check_missing(missing)
    if subjects < 4:
        raise ValueError(f"subjects must be at least 4, got {subjects}")
    out = Path(out)
    latent_rng, outcome_rng, missing_rng, image_rng, graph_rng, table_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 20_240_611]).spawn(6))
    n = subjects
    blob, edge, marker, age_z = latent_rng.standard_normal((4, n))
    eta = risk_logit(blob, edge, marker, age_z)
    p = _sigmoid(eta)
    outcome = (outcome_rng.random(n) < p).astype(int)
    dropped = _mnar_masks(missing_rng, eta, missing)
    ids = [f"ind-{k + 1:04d}" for k in range(n)]

    brain, bump, template = _brain(), _blob(), _template(graph_rng)
    iu = np.triu_indices(N_NODES, k=1)
    rows = []
    for k, sid in enumerate(ids):
        row: dict[str, object] = {"subject": sid}
        anatomy = brain * (1 + _smooth_noise(image_rng, 0.1)) + 0.03 * image_rng.standard_normal(brain.shape)
        perfusion = (brain * (1 + _smooth_noise(image_rng, 0.1)) + BLOB_PEAK * blob[k] * bump
                     + 0.03 * image_rng.standard_normal(brain.shape))
        upper = template * np.exp(0.5 * graph_rng.standard_normal(template.shape))
        i, j = SIGNAL_EDGE
        upper[i, j] = max(0.6 + 0.2 * edge[k] + 0.03 * graph_rng.standard_normal(), 0.01)
        adjacency = np.zeros((N_NODES, N_NODES), dtype=np.float32)
        adjacency[iu] = upper[iu]
        adjacency = adjacency + adjacency.T
        for m, (name, folder, write) in enumerate((
                ("anatomy", "anat", lambda path, a=anatomy: _save_nifti(path, a)),
                ("perfusion", "perf", lambda path, a=perfusion: _save_nifti(path, a)),
                ("connectome", "conn", lambda path, a=adjacency: atomic_save(
                    path, lambda tmp: np.savez_compressed(tmp, adjacency=a))))):
            if dropped[k, m]:
                row[name] = None
                continue
            suffix = ".npz" if name == "connectome" else ".nii.gz"
            rel = f"{sid}/{folder}/{sid}_{name}{suffix}"
            write(out / rel)
            row[name] = rel
        rows.append(row)
    manifest = pd.DataFrame(rows)
    manifest["age"] = np.round(62 + 11 * age_z, 1)
    manifest["sex"] = (table_rng.random(n) < 0.5).astype(float)
    manifest["marker"] = np.round(marker + 0.1 * table_rng.standard_normal(n), 3)
    manifest["score"] = np.round(table_rng.standard_normal(n), 3)
    for column, share in (("age", 0.05), ("marker", 0.10), ("score", 0.10)):
        manifest.loc[table_rng.random(n) < share, column] = np.nan
    manifest.loc[dropped[:, MODALITIES.index("clinical")], TABLE] = np.nan
    manifest["outcome"] = outcome

    # what the present data reveal: perfusion the blob, the connectome the edge, filled cells marker and age
    revealed = np.stack([~dropped[:, MODALITIES.index("perfusion")], ~dropped[:, MODALITIES.index("connectome")],
                         manifest["marker"].notna().to_numpy(), manifest["age"].notna().to_numpy()], axis=1)
    p_observed = observed_oracle(np.stack([blob, edge, marker, age_z], axis=1), revealed, dropped.sum(axis=1),
                                 len(MODALITIES), risk_logit, drop_probability(eta, missing), seed=seed)
    truth = pd.DataFrame({"subject": ids, "blob": blob, "edge": edge, "marker": marker, "age_z": age_z,
                          "eta": eta, "p_outcome": p, "p_observed": p_observed, "outcome": outcome})
    for m, name in enumerate(MODALITIES):
        truth[f"dropped_{name}"] = dropped[:, m].astype(int)
    atomic_write_csv(out / "truth" / "latents.csv", truth.round(6))
    atomic_write_csv(out / "truth" / "oracle.csv", truth[["subject", "p_outcome", "p_observed"]].round(6))
    atomic_write_json(out / "truth" / "model.json", {
        "generator": "fusemed.datasets.independent", "seed": seed, "subjects": n, "missing": missing,
        "coefficients": COEF, "mnar_slope": MNAR_SLOPE, "blob_centre_voxel": BLOB_CENTRE,
        "blob_sigma_voxels": BLOB_SIGMA, "blob_peak_per_sd": BLOB_PEAK, "signal_edge": SIGNAL_EDGE,
        "n_nodes": N_NODES, "grid": GRID, "voxel_mm": VOXEL_MM})
    spec = CohortSpec.model_validate({
        "name": "independent",
        "modalities": {"anatomy": {"kind": "volume"}, "perfusion": {"kind": "volume"},
                       "connectome": {"kind": "graph"}, "clinical": {"kind": "tabular", "columns": TABLE}},
        "targets": {"outcome": {"kind": "binary"}},
    })
    return write_cohort(out, spec, manifest)


DATASETS.register("independent", generate_independent)
