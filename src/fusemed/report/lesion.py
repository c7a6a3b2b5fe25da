"""Lesion-detection runs (metrics with ``sensitivity``): metrics, cluster tables, slice overlays.

Optional and tolerant: whatever files a detection run wrote are shown, missing ones are skipped. Looked
for under the run folder (and a ``predict*`` folder beside it): ``*clusters*.csv`` tables and NIfTI
maps named ``*map*``/``*score*`` (overlaid, with a ``*mask*``/``*lesion*`` file of the same subject drawn
as a contour when present).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.report.figures import Figure, figure
from fusemed.report.runs import RunData

log = logging.getLogger(__name__)

MAX_OVERLAYS = 4
MAX_CLUSTER_ROWS = 30


@dataclass
class LesionSection:
    run: str
    metrics: dict[str, Any]
    clusters: list[tuple[str, pd.DataFrame]]
    overlays: list[Figure]


def _search_roots(run: RunData) -> list[Path]:
    return [run.path, *sorted(p for p in run.path.parent.glob(f"{run.path.name}-predict*") if p.is_dir())]


def _files(run: RunData, pattern: re.Pattern[str], suffixes: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for root in _search_roots(run):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name.lower().endswith(suffixes) and pattern.search(path.name.lower()):
                found.append(path)
    return found


def _subject_key(path: Path) -> str:
    name = re.sub(r"\.nii(\.gz)?$", "", path.name)
    return re.sub(r"[_-]?(map|score|mask|lesion|prob\w*|detection)$", "", name, flags=re.I)


def overlay_figure(map_path: Path, mask_path: Path | None) -> Figure | None:
    """Three orthogonal slices through the map's maximum; the lesion mask as a red contour."""
    import nibabel as nib

    try:
        data = np.asarray(nib.load(str(map_path)).get_fdata(), dtype=float)
        mask = None if mask_path is None else np.asarray(nib.load(str(mask_path)).get_fdata()) > 0.5
    except Exception as err:  # noqa: BLE001 - a broken optional file must not stop the report
        log.warning("could not read %s (%s): overlay skipped", map_path, err)
        return None
    if data.ndim != 3 or not np.isfinite(data).any():
        return None
    if mask is not None and mask.shape != data.shape:
        mask = None
    centre = np.unravel_index(np.nanargmax(data), data.shape)
    with figure(f"overlay-{map_path.name}", f"Detection map: {map_path.name}",
                "Slices through the map's peak" + ("; red contour = reference lesion." if mask is not None else "."),
                size=(9.0, 3.2), ncols=3) as (fig, axes, out):
        for axis, ax in enumerate(np.atleast_1d(axes)):
            sl = [slice(None)] * 3
            sl[axis] = centre[axis]
            ax.imshow(np.rot90(data[tuple(sl)]), cmap="hot")
            if mask is not None and mask[tuple(sl)].any():
                ax.contour(np.rot90(mask[tuple(sl)].astype(float)), levels=[0.5], colors="cyan", linewidths=1)
            ax.set_axis_off()
    return out["figure"]


def lesion_section(run: RunData) -> LesionSection:
    scalars = {k: v for k, v in run.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    clusters = []
    for path in _files(run, re.compile(r"cluster"), (".csv", ".tsv"))[:5]:
        try:
            frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
        except Exception as err:  # noqa: BLE001 - tolerant by design
            log.warning("could not read %s (%s)", path, err)
            continue
        clusters.append((str(path.relative_to(run.path.parent)), frame.head(MAX_CLUSTER_ROWS)))
    maps = _files(run, re.compile(r"map|score"), (".nii", ".nii.gz"))
    masks = {_subject_key(p): p for p in _files(run, re.compile(r"mask|lesion"), (".nii", ".nii.gz"))}
    overlays = []
    for path in maps[:MAX_OVERLAYS]:
        fig = overlay_figure(path, masks.get(_subject_key(path)))
        if fig is not None:
            overlays.append(fig)
    return LesionSection(run.name, scalars, clusters, overlays)
