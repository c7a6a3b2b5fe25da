"""``Run``: a run folder that describes itself in ``RUN/run.json`` (layout, kind, fusemed version, task).

Every verb goes through this type, so nothing guesses what a folder holds: ``predict`` and ``evaluate``
dispatch on :attr:`Run.kind`, the report reads :attr:`Run.task`, resuming reads :attr:`Run.config`.
A folder without ``run.json`` (layout 1, before this file existed) or of another layout is refused with
a message that says what to do, instead of being half-read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusemed.io import atomic_write_json

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

    from fusemed.run.kinds import RunKind

#: version of the folder layout this fusemed writes and reads (1: before run.json)
LAYOUT = 2
RUN_FILE = "run.json"
#: files that mark a folder as a run of an older layout
_OLD_RUN_FILES = ("config.yaml", "metrics.json", "predictions.csv")


class RunLayoutError(ValueError):
    """A folder that is no run of this fusemed's layout (the CLI shows it as a one-line refusal)."""


@dataclass(frozen=True)
class RunTask:
    """What a run predicts: the cohort target's name, its kind (binary, multiclass, survival, mask,
    vertex_mask) and its number of classes (1 for a survival risk)."""

    name: str
    kind: str
    n_classes: int


@dataclass(frozen=True)
class Run:
    """An opened run folder.

    Attributes:
        path: the run folder.
        kind: a name in :data:`fusemed.run.RUN_KINDS` (``prognosis`` | ``detection``).
        task: the target the run was trained on.
        version: the fusemed version that wrote ``run.json``.
        layout: the folder layout (always :data:`LAYOUT` once opened).

    Examples:
        >>> run = Run.open("runs/hemis")  # doctest: +SKIP
        >>> run.kind, run.task.kind, run.config.model.fusion  # doctest: +SKIP
        ('prognosis', 'binary', 'hemis')
    """

    path: Path
    kind: str
    task: RunTask
    version: str
    layout: int = LAYOUT

    @classmethod
    def create(cls, path: str | Path, kind: str, task: RunTask) -> Run:
        """Write ``RUN/run.json`` atomically (first, before any other file of the run) and return the run."""
        from fusemed import __version__
        from fusemed.choices import look_up
        from fusemed.run.kinds import RUN_KINDS

        run = cls(Path(path), look_up(kind, list(RUN_KINDS)), task, __version__)
        atomic_write_json(run.path / RUN_FILE, {"layout": LAYOUT, "kind": run.kind, "fusemed": run.version,
                                                "task": asdict(task)})
        return run

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Read ``RUN/run.json``; a missing folder, a folder of an older layout or of another one is refused."""
        from fusemed.run.kinds import RUN_KINDS

        path = Path(path)
        file = path / RUN_FILE
        if not file.is_file():
            if not path.is_dir():
                raise FileNotFoundError(f"{path}: not a run folder (no such folder)")
            if any((path / f).is_file() for f in _OLD_RUN_FILES):
                raise RunLayoutError(f"{path} was written by an older fusemed (layout 1, no {RUN_FILE}): "
                                     "retrain it with `fusemed train`")
            raise RunLayoutError(f"{path}: not a run folder (no {RUN_FILE}); make one with `fusemed train`")
        try:
            data = json.loads(file.read_text())
            layout, kind, task = data["layout"], data["kind"], RunTask(**data["task"])
        except (ValueError, KeyError, TypeError) as err:
            raise RunLayoutError(f"{file}: not a readable run description ({err})") from None
        if layout != LAYOUT:
            raise RunLayoutError(f"{path} was written by fusemed {data.get('fusemed', '?')} (layout {layout}); this "
                                 f"fusemed reads layout {LAYOUT}: retrain it with `fusemed train`")
        if kind not in RUN_KINDS:
            raise RunLayoutError(f"{file}: unknown run kind {kind!r} (known: {', '.join(RUN_KINDS)})")
        return cls(path, kind, task, str(data.get("fusemed", "?")), layout)

    @property
    def spec(self) -> RunKind:
        """The registered kind: how this run's config, state and verbs are read."""
        from fusemed.run.kinds import RUN_KINDS

        return RUN_KINDS[self.kind]

    @cached_property
    def config(self) -> BaseModel:
        """The resolved config (``TrainConfig`` or ``DetectionConfig``) from ``RUN/config.yaml``."""
        return self.spec.config(self)

    @property
    def fingerprint(self) -> dict[str, Any]:
        """``cohort_fingerprint.json``: the cohort the run was trained on (empty when absent)."""
        return self._json("cohort_fingerprint.json") or {}

    @property
    def splits(self) -> list[dict[str, Any]]:
        """One record per fold: ``fold`` and subject lists ``train``, ``val``, ``calibration``, ``test``."""
        return self.spec.splits(self)

    def fold_dirs(self) -> list[Path]:
        """Per-fold state folders, in fold order (a detection run has one: ``detector/``)."""
        return self.spec.fold_dirs(self)

    @property
    def posthoc(self) -> Any:
        """What was fitted after training (``Posthoc`` or ``ClusterCalibrator``), or None."""
        return self.spec.posthoc(self)

    @property
    def predictions(self) -> pd.DataFrame | None:
        """``predictions.csv`` (subject and pattern as strings), or None when absent."""
        path = self.path / "predictions.csv"
        return read_predictions(path) if path.is_file() else None

    @property
    def metrics(self) -> dict[str, Any]:
        """``metrics.json`` (empty when absent)."""
        return self._json("metrics.json") or {}

    def _json(self, name: str) -> Any:
        path = self.path / name
        return json.loads(path.read_text()) if path.is_file() else None


def read_predictions(path: Path) -> pd.DataFrame:
    """A ``predictions.csv`` with ``subject`` and ``pattern`` as strings (ids like ``007`` stay intact)."""
    import pandas as pd

    frame = pd.read_csv(path, dtype={"subject": str, "pattern": str, "conformal_set": str})
    if "subject" not in frame.columns:
        raise ValueError(f"{path}: no 'subject' column (found {', '.join(map(str, frame.columns))})")
    return frame
