"""Lesion-detection runs (metrics with ``sensitivity``): metrics, cluster tables, slice overlays.

Optional and tolerant: whatever files a detection run wrote are shown, missing ones are skipped. Looked
for under the run folder (and a ``RUN-predict*`` folder beside it): ``detections.csv`` (one row per
subject), ``<subject>_clusters.csv`` tables (joined, most confident first) and NIfTI maps named
``*_prob``/``*map*``/``*score*`` (overlaid, with the subject's reference lesion mask drawn as a contour
when found in the run folder or in the cohort's ``truth/masks``).
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
    return re.sub(r"([_-]?(map|score|mask|lesion|prob\w*|detection))+$", "", name, flags=re.I)


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
                "Slices through the map's peak" + ("; cyan contour = reference lesion." if mask is not None else "."),
                size=(9.0, 3.2), ncols=3) as (fig, axes, out):
        for axis, ax in enumerate(np.atleast_1d(axes)):
            sl = [slice(None)] * 3
            sl[axis] = centre[axis]
            ax.imshow(np.rot90(data[tuple(sl)]), cmap="hot")
            if mask is not None and mask[tuple(sl)].any():
                ax.contour(np.rot90(mask[tuple(sl)].astype(float)), levels=[0.5], colors="cyan", linewidths=1)
            ax.set_axis_off()
    return out["figure"]


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Scalars, and one level of nested groups as ``group.key`` (e.g. ``mri_negative.sensitivity``)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
        elif isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{key}.{sub}"] = v
    return out


def _read_table(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
    except Exception as err:  # noqa: BLE001 - tolerant by design
        log.warning("could not read %s (%s)", path, err)
        return None


def _cluster_tables(run: RunData) -> list[tuple[str, pd.DataFrame]]:
    tables = []
    for path in _files(run, re.compile(r"^detections\.(csv|tsv)$"), (".csv", ".tsv"))[:1]:
        frame = _read_table(path)
        if frame is not None:
            tables.append((f"{path.name} (one row per subject)", frame.head(MAX_CLUSTER_ROWS)))
    per_subject = []
    for path in _files(run, re.compile(r"cluster"), (".csv", ".tsv")):
        frame = _read_table(path)
        if frame is not None and len(frame):
            if "subject" not in frame.columns:
                frame.insert(0, "subject", re.sub(r"[_-]?clusters?$", "", path.stem))
            per_subject.append(frame)
    if per_subject:
        joined = pd.concat(per_subject, ignore_index=True)
        sort = next((c for c in ("confidence", "probability", "score") if c in joined.columns), None)
        if sort is not None:
            joined = joined.sort_values(sort, ascending=False, kind="stable")
        title = f"clusters of {len(per_subject)} subject(s), most confident first"
        tables.append((title, joined.head(MAX_CLUSTER_ROWS)))
    return tables


def lesion_section(run: RunData) -> LesionSection:
    maps = [p for p in _files(run, re.compile(r"prob|map|score"), (".nii", ".nii.gz"))
            if not re.search(r"uncertainty|cluster", p.name.lower())]
    mask_files = _files(run, re.compile(r"mask|lesion"), (".nii", ".nii.gz"))
    if run.cohort is not None and (run.cohort / "truth" / "masks").is_dir():
        mask_files += sorted((run.cohort / "truth" / "masks").glob("*_lesion_mask.nii*"))
    masks = {_subject_key(p): p for p in mask_files}
    maps.sort(key=lambda p: _subject_key(p) not in masks)  # patients (with a reference lesion) first
    overlays = []
    for path in maps[:MAX_OVERLAYS]:
        fig = overlay_figure(path, masks.get(_subject_key(path)))
        if fig is not None:
            overlays.append(fig)
    return LesionSection(run.name, _flat_metrics(run.metrics), _cluster_tables(run), overlays)
