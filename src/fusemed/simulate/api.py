"""`simulate_cohort`: draw every subject's parameters, render them, write the cohort and its truth."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.simulate import bids as _bids
from fusemed.simulate import coma as _coma  # noqa: F401  (registers the scenario)
from fusemed.simulate import epilepsy as _epilepsy  # noqa: F401
from fusemed.simulate.anatomy import Anatomy, load_anatomy
from fusemed.simulate.config import SimulationConfig
from fusemed.simulate.connectome import simulate_connectome
from fusemed.simulate.missingness import draw_present
from fusemed.simulate.render import STREAMS, VOLUMES, render_subject, streams
from fusemed.simulate.scenario import Scenario
from fusemed.simulate.shapes import soft_sphere
from fusemed.simulate.sites import Site, draw_sites
from fusemed.simulate.surface import cortex_features
from fusemed.simulate.writer import (
    write_cohort_files,
    write_dataset_description,
    write_nifti,
    write_npz,
    write_table,
)

logger = logging.getLogger(__name__)

FILES = {
    "t1": "anat/{s}_T1w.nii.gz",
    "flair": "anat/{s}_FLAIR.nii.gz",
    "pet": "pet/{s}_trc-FDG_pet.nii.gz",
    "connectome": "func/{s}_connectome.npz",
    "cortex": "surf/{s}_space-fsaverage5_cortex.npz",
}
MASK = "truth/masks/{s}_lesion_mask.nii.gz"
VERTEX_MASK = "truth/masks/{s}_lesion_surface.npz"


def draw_cohort(
    config: SimulationConfig, anatomy: Anatomy | None = None, *, observed: bool = True
) -> tuple[Scenario, list[Site], list[dict]]:
    """The `make_params` half for a whole cohort: sites, then each subject's latents, site and
    present modalities. Cheap (no images), so tests and docs can draw thousands of subjects.

    With ``observed`` (default), each record also gets ``p_observed``, the observed-data oracle, where the
    scenario defines one (coma; ~10 ms per subject missing a modality, nothing for complete subjects);
    ``observed=False`` skips it when only the latents or the missingness are wanted."""
    anat = anatomy or load_anatomy()
    scenario = Scenario.create(config, anat)
    site_seed = config.seed if config.site_seed is None else config.site_seed
    sites = draw_sites(np.random.default_rng([site_seed, 0]), config.sites, config.spacing, config.missing_scheme)
    records = []
    for i in range(config.n_subjects):
        rng = np.random.default_rng([config.seed, 1, i])
        site = sites[int(rng.integers(len(sites)))]
        rec = scenario.draw(rng, i)
        rec["site"] = site.name
        present = draw_present(
            np.random.default_rng([config.seed, 2, i]),
            tuple(scenario.modalities),
            config,
            site,
            scenario.mnar_shift(rec),
        )
        rec.update({f"present_{m}": int(v) for m, v in present.items()})
        records.append(rec)
    p_observed = scenario.observed_oracle(records) if observed else None
    if p_observed is not None:
        for rec, p in zip(records, p_observed, strict=True):
            rec["p_observed"] = p
    return scenario, sites, records


def _write_subject(root: Path, scenario: Scenario, rec: dict, site: Site, layout: str = "cohort") -> dict[str, Any]:
    """Render and write one subject; returns its manifest row (paths relative to `root`).

    ``layout="bids"`` writes the same arrays under BIDS names (see :mod:`fusemed.simulate.bids`)."""
    s = rec["subject"]
    bids = layout == "bids"

    def where(mod: str) -> Path:
        return root / (_bids.FILES[mod].format(s=s) if bids else f"{s}/{FILES[mod].format(s=s)}")

    present = {m for m in scenario.modalities if rec[f"present_{m}"]}
    row: dict[str, Any] = {"subject": s, "site": site.name}
    out = render_subject(scenario.anatomy, scenario, rec, site, tuple(m for m in VOLUMES if m in present))
    for mod, img in out.images.items():
        dtype = np.float32 if mod == "pet" else np.int16
        write_nifti(where(mod), img, out.grid, dtype)
        if bids:
            sidecar = _bids.pet_sidecar(site.name) if mod == "pet" else _bids.mri_sidecar(site.name)
            _bids.write_json(where(mod).with_name(where(mod).name.replace(".nii.gz", ".json")), sidecar)
    rec.update(out.cnr)
    rec["lesion_voxels"] = int(out.mask.sum())
    if "connectome" in present:
        adj = simulate_connectome(
            np.random.default_rng(streams(rec)[STREAMS["connectome"]]),
            scenario.anatomy.roi_network,
            rec["dmn_disconnection"],
        )
        write_npz(
            where("connectome"),
            adjacency=adj,
            features=(scenario.anatomy.roi_mm / 100).astype(np.float32),
        )
    if "cortex" in present:
        features = cortex_features(scenario.anatomy, scenario, rec, site, out)
        if bids:
            _bids.write_surface(root, s, features)
        else:
            write_npz(root / s / FILES["cortex"].format(s=s), features=features)
    for mod in FILES:
        if mod in scenario.modalities:
            row[mod] = FILES[mod].format(s=s) if mod in present else None
            if mod in present:
                row[mod] = f"{s}/{row[mod]}"
    clinical = scenario.clinical(rec)
    for col, value in clinical.items():
        row[col] = value if "clinical" in present else None
    row.update(scenario.target_values(rec))
    if "lesion" in scenario.targets or rec.get("lesion"):
        write_nifti(root / MASK.format(s=s), out.mask, out.grid, np.uint8)
        if "lesion" in scenario.targets and bids:
            write_nifti(root / _bids.MASK.format(s=s), out.mask, out.grid, np.uint8)
        if "lesion" in scenario.targets:
            row["lesion"] = MASK.format(s=s)
    if "lesion_surface" in scenario.targets:
        labels = np.zeros(len(scenario.anatomy.surface.mid), dtype=np.int8)
        if rec["diagnosis"]:
            c = np.array([rec["lesion_x_mm"], rec["lesion_y_mm"], rec["lesion_z_mm"]], dtype=np.float32)
            labels = (soft_sphere(scenario.anatomy.surface.mid.T, c, rec["lesion_radius_mm"]) > 0.5).astype(np.int8)
        rec["lesion_vertices"] = int(labels.sum())
        write_npz(root / VERTEX_MASK.format(s=s), labels=labels)
        if bids:
            write_npz(root / _bids.VERTEX_MASK.format(s=s), labels=labels)
        row["lesion_surface"] = VERTEX_MASK.format(s=s)
    return row


def simulate_cohort(
    scenario: str,
    out: str | Path,
    n_subjects: int,
    seed: int = 0,
    spacing: float | None = None,
    missing: float = 0.0,
    missing_scheme: str = "mcar",
    sites: int = 3,
    progress: Callable[[int, int], None] | None = None,
    layout: str = "cohort",
    **options: Any,
) -> Path:
    """Write a simulated cohort to `out` and return its path.

    Args:
        scenario: "epilepsy" (diagnosis + lesion detection) or "coma" (prognosis).
        out: folder to create (existing files of the same names are replaced).
        n_subjects: number of subjects.
        seed: same seed -> byte-identical files.
        spacing: base voxel size in mm (default 3 for coma, 2 for epilepsy).
        missing: per-modality missingness rate; missing_scheme: "mcar", "mnar" or "site".
        sites: number of acquisition sites.
        progress: called as progress(done, total) after each subject.
        layout: "cohort" (cohort.yaml + manifest.csv beside BIDS-like folders) or "bids" (a BIDS dataset
            with sidecars and derivatives, for `fusemed import bids`; same arrays, same cohort once imported).
        options: other `SimulationConfig` fields (patient_fraction, mri_negative_cnr, site_seed).

    Examples:
        >>> simulate_cohort("coma", "coma-demo", n_subjects=20, seed=1)  # doctest: +SKIP
    """
    config = SimulationConfig(
        scenario=scenario,
        n_subjects=n_subjects,
        seed=seed,
        spacing=spacing,
        missing=missing,
        missing_scheme=missing_scheme,
        sites=sites,
        **options,
    )
    if layout not in _bids.LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(_bids.LAYOUTS)}, found {layout!r}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    scen, site_list, records = draw_cohort(config)
    by_name = {s.name: s for s in site_list}
    rows = []
    for i, rec in enumerate(records):
        rows.append(_write_subject(root, scen, rec, by_name[rec["site"]], layout))
        if scen.records_cnr:
            for mod in VOLUMES:
                rec.setdefault(f"cnr_{mod}", np.nan)
            mri_cnr = max(rec["cnr_t1"], rec["cnr_flair"])
            rec["mri_negative"] = bool(rec["diagnosis"]) and bool(mri_cnr < config.mri_negative_cnr)
        if progress is not None:
            progress(i + 1, len(records))
    oracle = pd.DataFrame(records)
    if not scen.records_cnr:
        oracle = oracle.drop(columns=[c for c in oracle.columns if c.startswith("cnr_")])
    write_table(root / "truth" / "oracle.csv", oracle)
    write_table(root / "truth" / "sites.csv", pd.DataFrame([s.row() for s in site_list]))
    write_dataset_description(root, config.scenario, config.seed)
    name = f"simulated-{config.scenario}-seed{config.seed}"
    if layout == "bids":
        _bids.write_bids_dataset(root, name, scen.modalities, scen.targets, rows)
        logger.info("wrote %d %s subjects to %s (BIDS)", len(records), config.scenario, root)
        return root
    write_table(
        root / "participants.tsv",
        pd.DataFrame(
            {
                "participant_id": [r["subject"] for r in records],
                "site": [r["site"] for r in records],
                "age": [round(r["age"], 1) for r in records],
                "sex": ["M" if r["sex"] else "F" for r in records],
            }
        ),
        sep="\t",
    )
    write_cohort_files(root, name, scen.modalities, scen.targets, pd.DataFrame(rows))
    logger.info("wrote %d %s subjects to %s", len(records), config.scenario, root)
    return root
