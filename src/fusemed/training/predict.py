"""Apply a trained run to a cohort (ensemble over its folds) and recompute its metrics.

Any modality may be missing in the new cohort, per subject or entirely (a modality the run used but the
cohort does not declare is missing for everyone).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.cohort import Cohort
from fusemed.evaluation.metrics import discrimination_report
from fusemed.run import Run
from fusemed.training.config import TrainConfig
from fusemed.training.data import CaseDataset, Task, pattern_of, stack_targets
from fusemed.training.io import atomic_write_csv, atomic_write_json, cohort_fingerprint
from fusemed.training.learners import FOLD_FILE, FoldContext, Predictor, load_predictor
from fusemed.training.module import ModelFactory, Slot, build_model
from fusemed.training.preprocessing import Preprocessing
from fusemed.training.runner import predictions_frame
from fusemed.uncertainty.methods import UncertaintyMethod
from fusemed.uncertainty.outputs import SplitOutputs, probabilities
from fusemed.uncertainty.posthoc import Posthoc
from fusemed.uncertainty.report import uncertainty_report

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


def run_modalities(meta: dict[str, Any]) -> list[str]:
    """The run's modalities from a fold's ``fold.json`` (a fold may read fewer: ``FoldContext``)."""
    return list(meta.get("run_modalities") or meta["modalities"])


def _run_task(meta: dict[str, Any]) -> Task:
    t = meta["task"]
    return Task(t["name"], t["kind"], int(t["n_classes"]))


def own_folds(run: Path, cohort: Cohort) -> dict[str, tuple[int, int]]:
    """On the run's own training cohort (same fingerprint): subject -> (fold, position in its test split).

    Those subjects get their out-of-fold prediction back, from the one fold model that never saw them;
    on any other cohort every subject is new (empty mapping).
    """
    opened = Run.open(run)
    saved = opened.fingerprint.get("sha256")
    if not saved or not (opened.path / "splits.json").is_file() or saved != cohort_fingerprint(cohort.root)["sha256"]:
        return {}
    return {s: (int(f["fold"]), i) for f in opened.splits for i, s in enumerate(f["test"])}


def _two_columns(logits: np.ndarray) -> np.ndarray:
    """Binary logits ``(..., 1)`` -> ``(..., 2)`` ``[0, z]`` (same softmax), so folds of any model stack."""
    z = np.asarray(logits, dtype=float)
    return np.concatenate([np.zeros_like(z), z], axis=-1) if z.shape[-1] == 1 else z


def _members(logits: np.ndarray) -> np.ndarray:
    return logits if logits.ndim == 3 else logits[None]


@dataclass
class LoadedFold:
    """One trained fold, ready to predict: its preprocessing, its predictor and the context it predicts in."""

    k: int
    preprocessing: Preprocessing
    predictor: Predictor
    ctx: FoldContext


def load_folds(run: Path, config: TrainConfig, model_factory: ModelFactory | None = None) -> list[LoadedFold]:
    """Every trained fold of ``run`` (``config`` = the run's config, e.g. with another batch size), in order.

    Shared by ``predict`` and ``advise``: whoever pushes inputs through a run's folds loads them here.
    """
    loaded = []
    for d in fold_dirs(run):
        fold = _fold_meta(d)
        k = int(fold["fold"])
        slots = [Slot(s["name"], s["kind"], tuple(s["shape"]), s["mesh"]) for s in fold["slots"]]
        ctx = FoldContext(config, _run_task(fold), fold["modalities"], slots, k, model_factory or build_model,
                          run_modalities=run_modalities(fold))
        loaded.append(LoadedFold(k, Preprocessing.load(d / "preprocessing.json"), load_predictor(d, ctx), ctx))
    return loaded


def predict_cohort(run: str | Path, cohort: Cohort, *, model_factory: ModelFactory | None = None,
                   batch_size: int | None = None) -> pd.DataFrame:
    """Predict every subject of ``cohort`` with the run's folds, the run's post-hoc steps applied.

    A subject of the run's own training cohort gets its own fold's model (its out-of-fold row again,
    ``source = fold-<k>``); anyone else gets every fold model (``source = folds``): probabilities averaged,
    their spread in ``p_std``, and, when the run fitted them, the calibrated ``p`` (``p_uncal`` before), the
    member summary and the conformal set of the fold its id is assigned to, with ``abstain``.
    """
    run = Path(run)
    opened = Run.open(run)  # an older layout is refused before any model is read
    config = opened.config
    if batch_size:
        config = config.updated(batch_size=batch_size)
    dirs = fold_dirs(run)
    metas = [_fold_meta(d) for d in dirs]
    modalities, task = run_modalities(metas[0]), _run_task(metas[0])
    kinds = {s["name"]: s["kind"] for meta in metas for s in meta["slots"]}
    declared = cohort.spec.modalities
    for m in modalities:
        if m not in declared:
            log.warning("cohort %s does not declare %r: it is missing for every subject", cohort.name, m)
        elif m in kinds and declared[m].kind.value != kinds[m]:
            raise ValueError(f"cohort {cohort.name}: modality {m!r} is a {declared[m].kind.value}, "
                             f"the run was trained on a {kinds[m]}")
    cases = [c for c in cohort if any(c.has(m) for m in modalities)]
    if len(cases) < len(cohort):
        log.warning("%d subject(s) have none of %s: not predicted", len(cohort) - len(cases), modalities)
    own = own_folds(run, cohort)
    _check_readable(cases, metas, own)
    label_task = task if task.name in cohort.spec.targets else None
    posthoc = opened.posthoc
    method = config.uncertainty.build()
    groups: dict[int | None, list] = {}
    for c in cases:  # own-fold subjects in their test split's order (same batches as in training)
        fold = own.get(c.subject, (None, 0))
        groups.setdefault(fold[0], []).append((fold[1], c))
    logits: dict[int | None, dict[int, np.ndarray]] = {g: {} for g in groups}
    for fold in load_folds(run, config, model_factory):
        fold.preprocessing.check_cohort(cohort)  # tabular columns matched by name, refused before any model
        for g, members in groups.items():
            if g is None or g == fold.k:
                ordered = [c for _, c in sorted(members, key=lambda t: t[0])]
                dataset = CaseDataset(ordered, fold.ctx.modalities, fold.preprocessing, label_task, cache=True)
                logits[g][fold.k] = fold.predictor.predict(dataset, fold.ctx)
    frames = []
    for g, members in groups.items():
        ordered = [c for _, c in sorted(members, key=lambda t: t[0])]
        frames.append(_frame(ordered, g, logits[g], task, modalities, posthoc, method))
    order = {c.subject: i for i, c in enumerate(cases)}
    frame = pd.concat(frames, ignore_index=True)
    return frame.iloc[np.argsort([order[s] for s in frame["subject"]], kind="stable")].reset_index(drop=True)


def _check_readable(cases: list, metas: list[dict[str, Any]], own: dict[str, tuple[int, int]]) -> None:
    """Refuse, before any model is read, a subject that a fold scoring it cannot read at all.

    A fold none of whose training subjects had a modality was fitted without it (``fold.json``: ``modalities``
    vs ``run_modalities``); a network of that fold has nothing to read in a subject who has only that one.
    New subjects are scored by every fold, the run's own by their fold. A classical baseline reads such a
    subject as missing values, so only folds holding a network are checked."""
    def network(entry: dict[str, Any]) -> bool:
        return entry["kind"] == "deep" or any(network(c) for c in entry.get("components", []))

    folds = {int(m["fold"]): set(m["modalities"]) for m in metas if network(m["predictor"])}
    for c in cases:
        mine = [k for k in ([own[c.subject][0]] if c.subject in own else folds) if k in folds]
        blind = [k for k in mine if not any(c.has(m) for m in folds[k])]
        if blind:
            has = [m for m in run_modalities(metas[0]) if c.has(m)]
            raise ValueError(f"subject {c.subject!r} has only {has}, which fold(s) {blind} of this run were "
                             "trained without (none of their training subjects had it), so their networks cannot "
                             "score it: leave the subject out, or predict with a run whose every fold saw it")


def _frame(cases: list, group: int | None, fold_logits: dict[int, np.ndarray], task: Task, modalities: list[str],
           posthoc: Posthoc | None, method: UncertaintyMethod) -> pd.DataFrame:
    """The rows of one group of subjects: those of one fold's test split (``group = k``) or new ones (None)."""
    patterns = [pattern_of(c, modalities) for c in cases]
    y = None
    if task.name and all(task.name in c.targets for c in cases):
        y = stack_targets(task, cases)
    stacked = np.concatenate([_members(_two_columns(z) if task.kind == "binary" else z)
                              for z in fold_logits.values()])
    frame = predictions_frame(SplitOutputs([c.subject for c in cases], stacked, y, patterns), task, group)
    if group is None:
        probs = probabilities(stacked, task.kind)
        member_p = {"survival": probs[..., 0], "binary": probs[..., -1]}.get(task.kind, probs.max(-1))
        frame["p_std"] = member_p.std(axis=0)
    if y is None and task.kind != "survival":  # some subjects lack the target: fill those that have it
        frame["y_true"] = [c.targets.get(task.name, np.nan) if c.targets.get(task.name) is not None else np.nan
                           for c in cases]
    if posthoc is not None and posthoc.classifies:
        columns = posthoc.apply(fold_logits, patterns, method, group, [c.subject for c in cases])
        frame = frame.drop(columns=[c for c in columns.columns if c in frame.columns])
        frame = pd.concat([frame, columns.set_axis(frame.index)], axis=1)
    frame["source"] = "folds" if group is None else f"fold-{group}"
    return frame


def predict_run(run: str | Path, cohort: str | Path, out: str | Path, *,
                model_factory: ModelFactory | None = None) -> Path:
    """Write ensemble predictions of ``run`` on the cohort folder ``cohort`` to the CSV ``out``."""
    frame = predict_cohort(run, Cohort.load(cohort), model_factory=model_factory)
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
    task, modalities = _run_task(meta), run_modalities(meta)
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
    frame = predict_cohort(run, loaded, model_factory=model_factory)
    folder = Path(out) if out else run / f"evaluation-{loaded.name}"
    atomic_write_csv(folder / "predictions.csv", frame)
    metrics = discrimination_report(frame, task.kind, modalities)
    if "conformal_set" in frame:
        alpha = Run.open(run).config.uncertainty.alpha
        report = uncertainty_report(frame, alpha=alpha)
        for pattern, values in report.pop("per_pattern", {}).items():
            metrics.setdefault("per_pattern", {}).setdefault(pattern, {}).update(values)
        metrics.update(report)
    metrics["cohort_fingerprint"] = {k: v for k, v in cohort_fingerprint(loaded.root).items() if k != "files"}
    atomic_write_json(folder / "metrics.json", metrics)
    return metrics
