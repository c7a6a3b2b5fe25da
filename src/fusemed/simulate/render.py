"""`apply_transform` half of the simulator: a subject's record + site -> images, deterministically.

Every random stream used here is spawned from the record's `render_seed`, with a fixed slot per use,
so skipping a missing modality never shifts another modality's noise. `replicate` k > 0 scans the
same subject again: same anatomy and warp (slot `deform`), new noise, bias field and measurement
error (every other slot spawned from (render_seed, k)); tests use it to measure what noise does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusemed.simulate.anatomy import Anatomy
from fusemed.simulate.detectability import combine, ideal_correlated, ideal_white
from fusemed.simulate.geometry import (
    Grid,
    control_grid,
    displacement,
    rigid_resample,
    sample,
    site_grid,
    warp_to_template,
    world_coords,
)
from fusemed.simulate.intensity import cnr, mr_image, pet_blur, pet_image, tissue_image
from fusemed.simulate.scenario import Scenario
from fusemed.simulate.sites import Site

#: Fixed stream slots spawned from `render_seed`.
STREAMS = {"deform": 0, "t1": 1, "flair": 2, "pet": 3, "cortex": 4, "connectome": 5, "cortex_registration": 6}
VOLUMES = ("t1", "flair", "pet")


@dataclass
class Rendered:
    """One subject's volumes on its site grid; `mask` is the lesion mask (bool, same grid); `cnr` the
    lesion's peak CNR (`cnr_<mod>`) and ideal-observer d' (`detectability_<mod>`) per modality."""

    grid: Grid
    images: dict[str, np.ndarray]
    mask: np.ndarray
    cnr: dict[str, float] = field(default_factory=dict)


def streams(rec: dict[str, Any], replicate: int = 0) -> list[np.random.SeedSequence]:
    """One seed sequence per `STREAMS` slot; `replicate` > 0 re-draws all but the anatomy's."""
    base = np.random.SeedSequence(int(rec["render_seed"])).spawn(len(STREAMS))
    if not replicate:
        return base
    again = np.random.SeedSequence([int(rec["render_seed"]), int(replicate)]).spawn(len(STREAMS))
    return [base[k] if k == STREAMS["deform"] else again[k] for k in range(len(STREAMS))]


def apply_atrophy(fields: dict[str, np.ndarray], rec: dict[str, Any]) -> None:
    """Age-related grey-matter loss: a fraction of GM becomes CSF (ventricles grow in the warp)."""
    lost = fields["gm"] * rec["gm_atrophy"]
    fields["gm"] = fields["gm"] - lost
    fields["csf"] = fields["csf"] + lost


def tissue_fields(anat: Anatomy, scenario: Scenario, rec: dict[str, Any], site: Site) -> tuple:
    """Warp the template into the subject and return (grid, world, healthy fields, lesioned fields)."""
    grid = site_grid(site.spacing, site.las)
    world = world_coords(site.spacing, site.las)
    ctrl = control_grid(streams(rec)[STREAMS["deform"]], rec["deform_mm"])
    xt = warp_to_template(world, rec, displacement(ctrl, site.spacing, site.las))
    healthy = sample(anat, xt, grid.shape)
    apply_atrophy(healthy, rec)
    lesioned = dict(healthy)
    flat = {k: v.reshape(-1) for k, v in lesioned.items()}
    scenario.modify(flat, xt, rec)
    lesioned = {k: v.reshape(grid.shape) for k, v in flat.items()}
    return grid, world, healthy, lesioned


def render_subject(
    anat: Anatomy,
    scenario: Scenario,
    rec: dict[str, Any],
    site: Site,
    present: tuple[str, ...] = VOLUMES,
    noise: bool = True,
    replicate: int = 0,
) -> Rendered:
    """Render the volumes in `present` (others skipped); `noise=False` gives the clean images (tests);
    `replicate` k > 0 rescans the same subject with new noise (see the module docstring)."""
    grid, world, healthy, fields = tissue_fields(anat, scenario, rec, site)
    mask = (fields.pop("lesion") > 0.5) & (fields["brain"] > 0.5)
    seeds = streams(rec, replicate)
    images: dict[str, np.ndarray] = {}
    for mod in VOLUMES:
        if mod not in present:
            continue
        clean = tissue_image(fields, mod)
        if mod == "pet":
            clean = pet_blur(clean, site, grid.spacing)
            img = pet_image(np.random.default_rng(seeds[STREAMS[mod]]), clean, site) if noise else clean
        else:
            gamma = site.t1_gamma if mod == "t1" else 1.0
            img = mr_image(np.random.default_rng(seeds[STREAMS[mod]]), clean, site, world, gamma) if noise else clean
        if mod != "t1":
            img = rigid_resample(img, grid, rec, mod)
        images[mod] = img
    out = Rendered(grid=grid, images=images, mask=mask)
    if scenario.records_cnr:
        out.cnr = lesion_cnr(fields, healthy, mask, site, grid) if mask.any() else {}
    return out


def lesion_cnr(fields: dict, healthy: dict, mask: np.ndarray, site: Site, grid: Grid) -> dict[str, float]:
    """Per modality, on the subject's own grid: the peak CNR of the planted change (`cnr_<mod>`, the
    visual-conspicuity measure, `intensity.cnr`) and the ideal observer's d' (`detectability_<mod>`,
    the aggregate evidence, `detectability`); `detectability_mri` joins T1 and FLAIR, `_all` all three."""
    result = {}
    for mod in VOLUMES:
        les, ref = tissue_image(fields, mod), tissue_image(healthy, mod)
        if mod == "pet":
            les, ref = pet_blur(les, site, grid.spacing), pet_blur(ref, site, grid.spacing)
            sd = site.pet_noise * np.sqrt(np.maximum(ref, 1e-3))
            result[f"cnr_{mod}"] = round(cnr(les / sd, ref / sd, 1.0), 4)
            result[f"detectability_{mod}"] = round(ideal_correlated(les - ref, sd), 4)
        else:
            result[f"cnr_{mod}"] = round(cnr(les, ref, site.mr_noise), 4)
            result[f"detectability_{mod}"] = round(ideal_white(les - ref, site.mr_noise), 4)
    d = [result[f"detectability_{m}"] for m in VOLUMES]
    result["detectability_mri"] = round(combine(d[0], d[1]), 4)
    result["detectability_all"] = round(combine(*d), 4)
    return result
