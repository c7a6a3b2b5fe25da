"""Read run folders (:class:`fusemed.run.Run`) into one tolerant record for the report.

The report must open whatever a run holds: a run without uncertainty columns, a survival run, a
lesion-detection run without predictions. Missing pieces become ``None`` / empty, never a crash; but the
run's own description (``run.json``) is required: the task's kind is read from it, never guessed from
which metrics happen to be there, and a folder without it (none, or an older layout) is refused by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.io import load_yaml
from fusemed.run import Run, read_predictions

__all__ = ["BASELINES", "RunData", "find_oracle", "load_run", "load_runs", "parse_set", "read_predictions"]

log = logging.getLogger(__name__)

#: the fusion strategies a new method is compared against (paired tests)
BASELINES = ("early", "late")


@dataclass
class RunData:
    """One run folder as the report sees it.

    Attributes:
        path: the run folder.
        name: a unique display name (folder name, made unique by the report).
        run: the opened run (kind, task).
        config: ``config.yaml`` as a dict (empty when absent).
        metrics: ``metrics.json`` (empty when absent).
        predictions: ``predictions.csv`` (``None`` when absent).
    """

    path: Path
    name: str
    run: Run
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None

    def setting(self, section: str, key: str) -> Any:
        """A config value: ``config[section][key]`` of a training run, ``config[key]`` of a detection run."""
        value = self.config.get(section)
        return value.get(key) if isinstance(value, dict) else self.config.get(key)

    @property
    def fusion(self) -> str:
        task = self.metrics.get("task") or {}
        return str(self.setting("model", "fusion") or task.get("fusion") or "?")

    @property
    def uncertainty(self) -> str:
        return str(self.setting("uncertainty", "method") or "none")

    @property
    def task_kind(self) -> str:
        """``binary`` | ``multiclass`` | ``survival`` | ``lesion`` (from run.json)."""
        return "lesion" if self.is_lesion else self.run.task.kind

    @property
    def is_lesion(self) -> bool:
        return self.run.kind == "detection"

    @property
    def cohort(self) -> Path | None:
        value = self.config.get("cohort")
        return Path(value) if value else None

    @property
    def alpha(self) -> float:
        return float(self.setting("uncertainty", "alpha") or 0.1)

    @property
    def modalities(self) -> list[str]:
        """The run's modalities: from its config, else the union of its patterns."""
        if self.setting("data", "modalities"):
            return list(self.setting("data", "modalities"))
        if self.predictions is None or "pattern" not in self.predictions:
            return []
        seen: list[str] = []
        for pattern in self.predictions["pattern"].dropna().astype(str):
            for m in pattern.split("+"):
                if m and m not in seen:
                    seen.append(m)
        return seen

    def labelled(self) -> pd.DataFrame:
        """Binary predictions with a label and a probability (the rows every curve uses)."""
        if self.predictions is None or not {"y_true", "p"} <= set(self.predictions.columns):
            return pd.DataFrame(columns=["subject", "y_true", "p", "pattern"])
        frame = self.predictions.dropna(subset=["y_true", "p"]).copy()
        frame["y_true"] = frame["y_true"].astype(int)
        return frame

    @property
    def binary(self) -> bool:
        """Curves (ROC, reliability, risk–coverage) are drawn for binary runs with both classes."""
        frame = self.labelled()
        return self.task_kind == "binary" and frame["y_true"].nunique() == 2

    def missing_rate(self) -> float | None:
        """Observed share of (subject, modality) slots that are missing, from the ``pattern`` column."""
        mods = self.modalities
        if not mods or self.predictions is None or "pattern" not in self.predictions:
            return None
        present = self.predictions["pattern"].fillna("").astype(str).map(lambda p: len([m for m in p.split("+") if m]))
        return float(1.0 - present.mean() / len(mods))


def _read_yaml(path: Path) -> dict[str, Any]:
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping, found {type(data).__name__}")
    return data


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """Read one run folder (:meth:`Run.open` refuses a folder without ``run.json``, naming it)."""
    run = Run.open(path)
    config = run.path / "config.yaml"
    return RunData(path=run.path, name=name or run.path.name, run=run,
                   config=_read_yaml(config) if config.is_file() else {}, metrics=run.metrics,
                   predictions=run.predictions)


def load_runs(paths: list[Path]) -> list[RunData]:
    """Read several runs; duplicate folder names get their parent folder prepended."""
    runs = [load_run(p) for p in paths]
    names = [r.name for r in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.name = f"{run.path.parent.name}/{run.path.name}"
    return runs


def find_oracle(cohort: Path | None) -> pd.DataFrame | None:
    """The simulator's truth table (``subject, p_outcome`` and, where written, ``p_observed``; see
    :mod:`fusemed.report.oracle`): ``COHORT/truth/oracle.csv`` or beside it."""
    if cohort is None:
        return None
    for candidate in (cohort / "truth" / "oracle.csv", cohort.parent / "truth" / "oracle.csv",
                      cohort / "oracle.csv"):
        if candidate.is_file():
            frame = pd.read_csv(candidate, dtype={"subject": str})
            if {"subject", "p_outcome"} <= set(frame.columns):
                return frame[[c for c in ("subject", "p_outcome", "p_observed") if c in frame.columns]]
            log.info("%s has no 'subject' and 'p_outcome' columns (not a prognosis truth): no oracle row", candidate)
    return None


def parse_set(value: Any) -> frozenset[int] | None:
    """``"{0,1}"`` -> ``frozenset({0, 1})``; ``"{}"`` -> empty; NaN/None -> ``None``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().strip("{}[]() ")
    if not text:
        return frozenset()
    return frozenset(int(float(t)) for t in text.replace(";", ",").split(",") if t.strip())
