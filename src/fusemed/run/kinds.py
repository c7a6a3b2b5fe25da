"""Run kinds: how a run of each kind reads its config and state, predicts and evaluates.

Prognosis (binary, multiclass, survival targets; cross-validated folds, :mod:`fusemed.training`) and lesion
detection (mask targets; one fit / calibration / test split, :mod:`fusemed.diagnosis`) share the verbs;
a subclass of :class:`RunKind` registers itself by ``name`` and ``fusemed predict / evaluate`` dispatch
on :attr:`fusemed.run.Run.kind`, never on which files a folder happens to hold. Heavy modules are
imported inside the methods so that opening a run costs no torch import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fusemed.io import load_yaml

if TYPE_CHECKING:
    from pydantic import BaseModel

    from fusemed.run.run import Run

RUN_KINDS: dict[str, RunKind] = {}


class RunKind:
    """One kind of run; subclasses set ``name`` (and ``target_kinds``) and register themselves."""

    name: ClassVar[str] = ""
    #: cohort target kinds (``fusemed.cohort.TargetKind`` values) a run of this kind is trained on
    target_kinds: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            RUN_KINDS[cls.name] = cls()

    def config(self, run: Run) -> BaseModel:
        """The resolved config the run was trained with."""
        raise NotImplementedError

    def splits(self, run: Run) -> list[dict[str, Any]]:
        """Per fold: ``fold`` and the subject lists ``train``, ``val``, ``calibration``, ``test``."""
        raise NotImplementedError

    def fold_dirs(self, run: Run) -> list[Path]:
        """The folders of trained per-fold state, in fold order."""
        raise NotImplementedError

    def posthoc(self, run: Run) -> Any:
        """The state fitted after training, or None."""
        raise NotImplementedError

    def predict(self, run: Run, cohort: Path, out: Path) -> Path:
        """Apply the run to every subject of ``cohort``; returns what was written."""
        raise NotImplementedError

    def evaluate(self, run: Run, cohort: Path | None, out: Path | None) -> tuple[dict[str, Any], Path]:
        """Score the run (its own held-out subjects, or all of ``cohort``); returns metrics and their file."""
        raise NotImplementedError


def kind_of_target(target_kind: str) -> RunKind:
    """The run kind that trains on a target of this kind (``binary`` -> prognosis, ``mask`` -> detection)."""
    for kind in RUN_KINDS.values():
        if target_kind in kind.target_kinds:
            return kind
    raise ValueError(f"no run kind trains on a {target_kind} target "
                     f"(known: {', '.join(k for kind in RUN_KINDS.values() for k in kind.target_kinds)})")


class Prognosis(RunKind):
    """Cross-validated outcome or survival prediction: ``fold-<k>/``, ``splits.json``, ``posthoc.json``."""

    name = "prognosis"
    target_kinds = ("binary", "multiclass", "survival")

    def config(self, run: Run) -> BaseModel:
        from fusemed.training.config import TrainConfig

        return TrainConfig.model_validate(load_yaml(run.path / "config.yaml"), context={"saved_run": True})

    def splits(self, run: Run) -> list[dict[str, Any]]:
        return json.loads((run.path / "splits.json").read_text())

    def fold_dirs(self, run: Run) -> list[Path]:
        from fusemed.training.predict import fold_dirs

        return fold_dirs(run.path)

    def posthoc(self, run: Run) -> Any:
        from fusemed.uncertainty.posthoc import Posthoc

        path = run.path / "posthoc.json"
        return Posthoc.from_json(json.loads(path.read_text())) if path.is_file() else None

    def predict(self, run: Run, cohort: Path, out: Path) -> Path:
        from fusemed.training import predict_run

        return predict_run(run.path, cohort, out)

    def evaluate(self, run: Run, cohort: Path | None, out: Path | None) -> tuple[dict[str, Any], Path]:
        from fusemed.training import evaluate_run

        metrics = evaluate_run(run.path, cohort, out)
        if cohort is None:
            return metrics, run.path / "metrics.json"
        from fusemed.cohort import CohortSpec

        name = CohortSpec.from_yaml(Path(cohort) / "cohort.yaml").name
        return metrics, (Path(out) if out else run.path / f"evaluation-{name}") / "metrics.json"


class Detection(RunKind):
    """Lesion detection: ``detector/`` (the fitted detector), ``split.csv``, ``calibration.json``."""

    name = "detection"
    target_kinds = ("mask", "vertex_mask")

    def config(self, run: Run) -> BaseModel:
        from fusemed.diagnosis.config import DetectionConfig

        return DetectionConfig.model_validate(load_yaml(run.path / "config.yaml"))

    def splits(self, run: Run) -> list[dict[str, Any]]:
        import pandas as pd

        split = pd.read_csv(run.path / "split.csv", dtype={"subject": str})
        named = {"train": "fit", "val": None, "calibration": "calibration", "test": "test"}
        return [{"fold": 0, **{key: split.loc[split["split"] == value, "subject"].tolist() if value else []
                               for key, value in named.items()}}]

    def fold_dirs(self, run: Run) -> list[Path]:
        folder = run.path / "detector"
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{run.path}: no trained detector (detector/config.json); "
                                    "run `fusemed train` first")
        return [folder]

    def posthoc(self, run: Run) -> Any:
        from fusemed.diagnosis.clusters import ClusterCalibrator

        path = run.path / "calibration.json"
        return ClusterCalibrator.from_json(json.loads(path.read_text())) if path.is_file() else None

    def predict(self, run: Run, cohort: Path, out: Path) -> Path:
        from fusemed.diagnosis import predict_detector

        return predict_detector(run.path, cohort, out)

    def evaluate(self, run: Run, cohort: Path | None, out: Path | None) -> tuple[dict[str, Any], Path]:
        from fusemed.diagnosis import evaluate_detector

        if out is not None:
            raise ValueError("--out does not apply to a detection run: evaluate writes RUN/metrics.json, "
                             "RUN/detections.csv and RUN/predictions/")
        if cohort is None:  # the run's own held-out test split
            metrics = evaluate_detector(run.path, run.config.cohort)
        else:  # another cohort: every subject of it is new to the detector
            from fusemed.cohort import Cohort

            metrics = evaluate_detector(run.path, cohort, subjects=Cohort.load(cohort).subjects)
        return metrics, run.path / "metrics.json"
