"""Lesion-detection runs (metrics with ``sensitivity``): metrics, cluster tables, slice overlays.

Optional and tolerant: whatever files a detection run wrote are shown, missing ones are skipped. Looked
for under the run folder (and a ``RUN-predict*`` folder beside it): ``detections.csv`` (one row per
subject), ``<subject>_clusters.csv`` tables (joined, most confident first) and NIfTI maps named
``*_prob``/``*map*``/``*score*`` (overlaid, with the subject's reference lesion mask drawn as a contour
when found in the run folder or in the cohort's ``truth/masks``), and ``froc.csv`` (the operating curve
written by `evaluate_detector`), drawn as an FROC figure with the matched operating points marked.
Every detection table shows the sensitivity-at-fixed-specificity columns (`OPERATING_COLUMNS`).
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
#: Matched operating points every detection table carries (NaN when the run did not compute them).
OPERATING_COLUMNS = ("sens_at_spec80", "sens_at_spec90", "sens_at_fp1", "mri_negative.sens_at_spec80",
                     "mri_negative.sens_at_spec90", "mri_negative.sens_at_fp1", "n_unscored_patients")


@dataclass
class LesionSection:
    run: str
    metrics: dict[str, Any]
    clusters: list[tuple[str, pd.DataFrame]]
    overlays: list[Figure]
    froc: Figure | None = None


def froc_figure(curves: dict[str, pd.DataFrame], points: dict[str, dict[str, float]] | None = None) -> Figure:
    """FROC: sensitivity against mean false-positive clusters per patient, one line per run (`froc.csv`
    frames), with each run's matched operating points (specificity 0.8 / 0.9, <= 1 FP/patient) marked.
    Also the subject-level ROC-style panel: sensitivity against 1 - specificity on the controls.

    Args:
        curves: run name -> frame with `fp_per_patient`, `sensitivity`, `specificity` per threshold.
        points: run name -> flat metrics with `sens_at_spec80`, `fp_at_spec80`, ... (optional).
    """
    from fusemed.report.figures import color

    with figure("froc", "FROC and subject-level operating curve",
                "Left: sensitivity (patients with a cluster on the lesion; unscored patients count as misses) "
                "vs mean false-positive clusters per patient. Right: sensitivity vs 1 - specificity (controls "
                "with any cluster). Markers: sensitivity at specificity 0.8 (o), 0.9 (s), at <= 1 FP/patient (^).",
                size=(10.0, 4.0), ncols=2) as (fig, axes, out):
        left, right = axes
        for i, (name, curve) in enumerate(curves.items()):
            c = curve.sort_values("threshold")
            left.plot(c["fp_per_patient"], c["sensitivity"], "-", color=color(i), label=name, drawstyle="steps-post")
            right.plot(1 - c["specificity"], c["sensitivity"], "-", color=color(i), label=name)
            p = (points or {}).get(name, {})
            for key, marker in (("spec80", "o"), ("spec90", "s"), ("fp1", "^")):
                sens, fp, spec = p.get(f"sens_at_{key}"), p.get(f"fp_at_{key}"), p.get(f"spec_at_{key}")
                if sens is not None and fp is not None and np.isfinite([sens, fp]).all():
                    left.plot([fp], [sens], marker, color=color(i), markersize=7)
                if sens is not None and spec is not None and np.isfinite([sens, spec]).all():
                    right.plot([1 - spec], [sens], marker, color=color(i), markersize=7)
        left.axvline(1.0, color="grey", lw=0.8, ls=":")
        for x in (0.1, 0.2):
            right.axvline(x, color="grey", lw=0.8, ls=":")
        left.set(xlabel="false-positive clusters per patient", ylabel="sensitivity", ylim=(-0.02, 1.02))
        right.set(xlabel="1 - specificity (controls)", ylabel="sensitivity", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        left.legend(fontsize=8, loc="lower right")
    return out["figure"]


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
    metrics = _flat_metrics(run.metrics)
    for col in OPERATING_COLUMNS:
        metrics.setdefault(col, float("nan"))
    froc_path = run.path / "froc.csv"
    fig = None
    if froc_path.is_file():
        curve = _read_table(froc_path)
        if curve is not None and {"fp_per_patient", "sensitivity", "specificity"} <= set(curve.columns):
            fig = froc_figure({run.name: curve}, {run.name: metrics})
    else:
        log.warning("%s: no froc.csv (evaluated before operating curves existed?): no FROC figure", run.path)
    return LesionSection(run.name, metrics, _cluster_tables(run), overlays, fig)
