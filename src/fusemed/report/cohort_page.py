"""Cohort summary: who has which modality (availability matrix) and how often each pattern occurs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fusemed.report.figures import Figure, figure

log = logging.getLogger(__name__)


def load_cohort_summary(folder: Path) -> tuple[dict[str, Any], np.ndarray, list[str], list[str]] | None:
    """``(validate summary, presence (S, M) bool, subjects, modalities)``; ``None`` if unreadable."""
    from fusemed.cohort import Cohort, validate_cohort

    report = validate_cohort(folder)
    if not report.summary:
        log.warning("cohort %s could not be read (%d problems): cohort page left out", folder, len(report.problems))
        return None
    cohort = Cohort.load(folder)
    mods = list(cohort.modality_names)
    subjects = [c.subject for c in cohort]
    presence = np.array([[c.has(m) for m in mods] for c in cohort], dtype=bool)
    summary = dict(report.summary)
    summary["problems"] = [str(p) for p in report.problems]
    summary["warnings"] = list(report.warnings)
    return summary, presence, subjects, mods


def availability_figure(presence: np.ndarray, mods: list[str]) -> Figure:
    """Subjects (rows, grouped by pattern) × modalities; dark = present."""
    keys = [tuple(row) for row in presence]
    order = sorted(range(len(keys)), key=lambda i: (-sum(keys[i]), [not v for v in keys[i]]))
    data = presence[order].astype(float)
    with figure("availability", "Modality availability",
                "One row per subject, grouped by pattern; dark = present, light = missing.",
                size=(max(3.5, 0.8 * len(mods) + 1.5), 4.0)) as (fig, ax, out):
        ax.imshow(data, aspect="auto", cmap="Blues", vmin=-0.2, vmax=1.0, interpolation="nearest")
        ax.set_xticks(range(len(mods)), mods, rotation=30, ha="right")
        ax.set_ylabel(f"subjects (n = {len(data)})")
        ax.set_yticks([])
    return out["figure"]


def patterns_figure(patterns: dict[str, int]) -> Figure | None:
    """Horizontal bars: subjects per missing-modality pattern, most frequent first."""
    if not patterns:
        return None
    items = sorted(patterns.items(), key=lambda kv: -kv[1])
    if len(items) > 12:
        items = [*items[:11], (f"{len(items) - 11} other patterns", sum(v for _, v in items[11:]))]
    with figure("patterns", "Missing-modality patterns", "Present modalities joined by '+'; rare patterns pooled.",
                size=(6.0, max(2.0, 0.35 * len(items) + 0.8))) as (fig, ax, out):
        ax.barh(range(len(items)), [v for _, v in items], color="#4c72b0")
        ax.set_yticks(range(len(items)), [k or "(none)" for k, _ in items], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("subjects")
    return out["figure"]


def patterns_from_runs(runs: list[Any]) -> dict[str, int]:
    """Pattern counts from the first run's predictions when no cohort folder is at hand."""
    for run in runs:
        if run.predictions is not None and "pattern" in run.predictions:
            counts = run.predictions["pattern"].fillna("").astype(str).value_counts()
            return {str(k): int(v) for k, v in counts.items()}
    return {}
