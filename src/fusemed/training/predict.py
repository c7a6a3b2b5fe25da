"""Apply a trained run to a cohort (ensemble over its folds) and recompute its metrics.

Any modality may be missing in the new cohort, per subject or entirely (a modality the run used but the
cohort does not declare is missing for everyone).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.cohort import Cohort
from fusemed.evaluation.metrics import discrimination_report
from fusemed.training.config import TrainConfig
from fusemed.training.data import CaseDataset, Task, pattern_of, stack_targets
from fusemed.training.hooks import SplitOutputs, probabilities
from fusemed.training.io import atomic_write_csv, atomic_write_json, cohort_fingerprint
from fusemed.training.learners import FOLD_FILE, FoldContext, load_predictor
from fusemed.training.module import ModelFactory, Slot, build_model
from fusemed.training.preprocessing import Preprocessing
from fusemed.training.runner import predictions_frame

log = logging.getLogger(__name__)


def fold_dirs(run: Path) -> list[Path]:
    """Trained folds of a run (those with ``fold.json``), in fold order."""
    dirs = sorted((d for d in Path(run).glob("fold-*") if (d / FOLD_FILE).is_file()),
                  key=lambda d: int(d.name.split("-")[1]))
    if not dirs:
        raise FileNotFoundError(f"{run}: no trained fold (fold-<k>/{FOLD_FILE}); run `fusemed train` first "
                                "(runs made before fold.json existed must be retrained)")
    return dirs


def _fold_meta(fold_dir: Path) -> dict[str, Any]:
    return json.loads((fold_dir / FOLD_FILE).read_text())


def _run_task(meta: dict[str, Any]) -> Task:
    t = meta["task"]
    return Task(t["name"], t["kind"], int(t["n_classes"]))


def predict_cohort(run: str | Path, cohort: Cohort, *, model_factory: ModelFactory | None = None,
                   batch_size: int = 8) -> tuple[pd.DataFrame, np.ndarray]:
    """Ensemble prediction of every fold's model on ``cohort``.

    Returns ``(frame, member_logits (K, n, C))``: ``frame`` has ``subject, pattern, y_true, p`` (plus
    ``p_<k>`` / ``time, event``, ``p_std`` across members); K = every member of every fold's predictor.
    """
    run = Path(run)
    config = TrainConfig.load_run(run).model_copy(update={"batch_size": batch_size})
    dirs = fold_dirs(run)
    meta = _fold_meta(dirs[0])
    modalities, task = meta["modalities"], _run_task(meta)
    kinds = {s["name"]: s["kind"] for s in meta["slots"]}
    declared = cohort.spec.modalities
    for m in modalities:
        if m not in declared:
            log.warning("cohort %s does not declare %r: it is missing for every subject", cohort.name, m)
        elif declared[m].kind.value != kinds[m]:
            raise ValueError(f"cohort {cohort.name}: modality {m!r} is a {declared[m].kind.value}, "
                             f"the run was trained on a {kinds[m]}")
    cases = [c for c in cohort if any(c.has(m) for m in modalities)]
    if len(cases) < len(cohort):
        log.warning("%d subject(s) have none of %s: not predicted", len(cohort) - len(cases), modalities)
    labelled = task.name in cohort.spec.targets and all(task.name in c.targets for c in cases)
    label_task = task if task.name in cohort.spec.targets else None
    factory = model_factory or build_model
    members = []
    for d in dirs:
        fold = _fold_meta(d)
        prep = Preprocessing.load(d / "preprocessing.json")
        prep.check_cohort(cohort)  # tabular columns matched by name, a mismatch refused before any model
        slots = [Slot(s["name"], s["kind"], tuple(s["shape"]), s["mesh"]) for s in fold["slots"]]
        ctx = FoldContext(config, task, modalities, slots, int(fold["fold"]), factory)
        logits = load_predictor(d, ctx).predict(CaseDataset(cases, modalities, prep, label_task, cache=True), ctx)
        members.extend(logits if logits.ndim == 3 else logits[None])
    logits = np.stack(members)
    y = stack_targets(task, cases) if labelled else None
    split = SplitOutputs([c.subject for c in cases], logits, y, [pattern_of(c, modalities) for c in cases])
    frame = predictions_frame(split, task)
    probs = probabilities(logits, task.kind)  # (K, n, C): spread of the folds' predictions
    member_p = {"survival": probs[..., 0], "binary": probs[..., -1]}.get(task.kind, probs.max(-1))
    frame["p_std"] = member_p.std(axis=0)
    if y is None and label_task is not None:  # some subjects lack the target: fill those that have it
        values = {c.subject: c.targets.get(task.name) for c in cases}
        if task.kind != "survival":
            frame["y_true"] = [values[s] if values[s] is not None else np.nan for s in frame["subject"]]
    return frame, logits


def predict_run(run: str | Path, cohort: str | Path, out: str | Path, *,
                model_factory: ModelFactory | None = None) -> Path:
    """Write ensemble predictions of ``run`` on the cohort folder ``cohort`` to the CSV ``out``."""
    frame, _ = predict_cohort(run, Cohort.load(cohort), model_factory=model_factory)
    return atomic_write_csv(Path(out), frame)


def evaluate_run(run: str | Path, cohort: str | Path | None = None, out: str | Path | None = None, *,
                 model_factory: ModelFactory | None = None) -> dict[str, Any]:
    """Recompute metrics.

    Without ``cohort``: from the run's out-of-fold ``predictions.csv`` into ``RUN/metrics.json`` (keys
    other steps added, e.g. uncertainty metrics, are kept). With ``cohort``: the fold ensemble is applied
    to that cohort's subjects and ``predictions.csv`` + ``metrics.json`` go to ``out`` (default
    ``RUN/evaluation-<cohort name>/``).
    """
    run = Path(run)
    meta = _fold_meta(fold_dirs(run)[0])
    task, modalities = _run_task(meta), meta["modalities"]
    if cohort is None:
        frame = pd.read_csv(run / "predictions.csv", dtype={"subject": str})
        path = run / "metrics.json"
        metrics = json.loads(path.read_text()) if path.is_file() else {}
        fresh = discrimination_report(frame, task.kind, modalities)
        per_pattern = metrics.get("per_pattern", {})
        for pattern, values in fresh.pop("per_pattern").items():  # keep other steps' per-pattern keys
            per_pattern.setdefault(pattern, {}).update(values)
        metrics.update(fresh, per_pattern=per_pattern)
        atomic_write_json(path, metrics)
        return metrics
    loaded = Cohort.load(cohort)
    if task.name not in loaded.spec.targets:
        raise ValueError(f"cohort {loaded.name} has no target {task.name!r} to evaluate against; "
                         "use `fusemed predict` for unlabelled cohorts")
    frame, _ = predict_cohort(run, loaded, model_factory=model_factory)
    folder = Path(out) if out else run / f"evaluation-{loaded.name}"
    atomic_write_csv(folder / "predictions.csv", frame)
    metrics = discrimination_report(frame, task.kind, modalities)
    metrics["cohort_fingerprint"] = {k: v for k, v in cohort_fingerprint(loaded.root).items() if k != "files"}
    atomic_write_json(folder / "metrics.json", metrics)
    return metrics
