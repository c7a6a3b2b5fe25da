"""``train_run``: cross-validated training into a self-describing run folder, resumable after a kill.

Layout written (rank 0 only)::

    RUN/run.json                  layout, kind, fusemed version, task (fusemed.run.Run; written first)
    RUN/config.yaml               resolved TrainConfig (rerunning the same command resumes)
    RUN/cohort_fingerprint.json   hash of cohort.yaml, manifest and file sizes/mtimes
    RUN/splits.json               subject ids of every fold's train / val / calibration / test
    RUN/fold-<k>/preprocessing.json, checkpoints/{best,last}.ckpt, model.pt (+ .json), outputs.npz, done.json
    RUN/posthoc.json              temperature, conformal thresholds, out-of-fold scores (applied by predict)
    RUN/predictions.csv, RUN/metrics.json
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback

from fusemed.choices import look_up
from fusemed.cohort import Cohort
from fusemed.configure.space import is_baseline
from fusemed.evaluation.metrics import discrimination_report
from fusemed.evaluation.survival import out_of_fold_integrated_brier
from fusemed.run import Run, RunTask
from fusemed.training.config import TrainConfig
from fusemed.training.data import CaseDataset, Task, pattern_of, stack_targets
from fusemed.training.io import atomic_save, atomic_write_csv, atomic_write_json, cohort_fingerprint
from fusemed.training.learners import FoldContext, fit_baseline, fit_deep, save_predictor
from fusemed.training.module import ModelFactory, Slot, build_model
from fusemed.training.preprocessing import Preprocessing
from fusemed.training.resume import cohort_changes, config_changes
from fusemed.training.splits import FoldSplit, make_folds
from fusemed.uncertainty.outputs import FoldOutputs, SplitOutputs, member_mean_probabilities
from fusemed.uncertainty.posthoc import Posthoc
from fusemed.uncertainty.report import uncertainty_report

log = logging.getLogger(__name__)


def resolve_modalities(cohort: Cohort, wanted: Sequence[str] | None) -> list[str]:
    """The run's modalities in spec order; a misspelt name gets "did you mean"."""
    if not wanted:
        return list(cohort.modality_names)
    chosen = {look_up(m, list(cohort.modality_names)) for m in wanted}
    return [m for m in cohort.modality_names if m in chosen]


def _check_resumable(out: Path, config: TrainConfig) -> None:
    if not (out / "config.yaml").is_file():
        return
    differ = config_changes(Run.open(out).config, config)  # an older layout is refused here
    if differ:
        raise ValueError(f"{out} already holds a run with a different config ({', '.join(differ)}); "
                         "choose another --out or delete it")
    changed = cohort_changes(out, Path(config.cohort))
    if changed:
        raise ValueError(f"{out}: the cohort changed since this run started ({'; '.join(changed)}); resuming "
                         "would mix two cohorts: choose another --out or delete it")


def train_run(config: TrainConfig, out: str | Path, *, model_factory: ModelFactory | None = None,
              callbacks: Sequence[Callback] = (), moddrop_fn: Any = None) -> Path:
    """Train ``config.data.folds`` cross-validation folds into ``out``; return ``out``.

    Rerunning with the same config continues an interrupted fold from its ``last.ckpt`` and skips the
    folds already done. ``callbacks`` are extra Lightning callbacks (e.g. for tests or logging).
    """
    out = Path(out)
    start = time.perf_counter()
    rank0 = rank_zero_only.rank == 0
    cohort = Cohort.load(config.cohort)
    modalities = resolve_modalities(cohort, config.data.modalities)
    task = Task.from_cohort(cohort, config.target)
    config = config.updated(modalities=modalities, cohort=str(cohort.root.resolve()))
    _check_resumable(out, config)
    cases = [c for c in cohort if task.name in c.targets and any(c.has(m) for m in modalities)]
    if len(cases) < len(cohort):
        log.warning("%d of %d subjects have no %r target or none of %s: left out of training",
                    len(cohort) - len(cases), len(cohort), task.name, modalities)
    folds = make_folds([c.subject for c in cases], [task.strata(c) for c in cases], [c.site for c in cases],
                       config.data.folds, config.seed, config.data.val_fraction, config.data.calibration_fraction)
    check_scorable(cohort, folds, modalities, config.model.fusion, config.model.search.candidates)
    if rank0:
        Run.create(out, "prognosis", RunTask(task.name, task.kind, task.n_classes))
        config.to_yaml(out / "config.yaml")
        atomic_write_json(out / "cohort_fingerprint.json", cohort_fingerprint(cohort.root))
        atomic_write_json(out / "splits.json", [f.to_dict() for f in folds])
    factory = model_factory or build_model
    outputs = []
    for split in folds:
        fold_dir = out / f"fold-{split.fold}"
        if (fold_dir / "done.json").is_file():
            log.info("fold %d already done: skipped", split.fold)
            outputs.append(load_fold_outputs(fold_dir, split.fold, task.kind))
            continue
        result = train_fold(config, cohort, split, task, modalities, fold_dir, factory, callbacks, moddrop_fn)
        outputs.append(result)
    if rank0:
        write_results(out, config, task, modalities, outputs, time.perf_counter() - start)  # type: ignore[arg-type]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return out


def _readable(cohort: Cohort, split: FoldSplit, modalities: list[str]) -> list[str]:
    cases = [cohort[s] for s in split.train]
    return [m for m in modalities if any(c.has(m) for c in cases)]


def fold_modalities(cohort: Cohort, split: FoldSplit, modalities: list[str]) -> list[str]:
    """The modalities a fold's model can read: those at least one of its training subjects has.

    A modality no training subject of the fold has cannot be fitted; the fold reads its subjects as missing
    it (the same as any other missing exam) rather than failing the whole run, and says so in the log and in
    ``fold.json`` (``modalities`` vs ``run_modalities``)."""
    readable = _readable(cohort, split, modalities)
    if not readable:
        raise ValueError(f"fold {split.fold}: no training subject has any of {modalities}")
    if dropped := [m for m in modalities if m not in readable]:
        log.warning("fold %d: no training subject has %s: this fold reads every subject as missing it",
                    split.fold, dropped)
    return readable


def check_scorable(cohort: Cohort, folds: Sequence[FoldSplit], modalities: list[str], fusion: str,
                   candidates: list[str] | None = None) -> None:
    """Refuse, before anything is trained, a split no network of its fold could score.

    A subject whose only modalities are ones its fold's training subjects all lack (a modality held by one
    or two subjects) has nothing that fold's network can read, so validation or scoring would fail deep in
    training. A classical baseline reads such a subject as all-missing features and needs no check, nor
    does ``auto`` whose search space names only baselines (``candidates``)."""
    choices = candidates if fusion == "auto" and candidates else [fusion]
    if all(is_baseline(c) for c in choices):
        return
    for split in folds:
        readable = set(_readable(cohort, split, modalities))
        for subject in split.val + split.calibration + split.test:
            has = [m for m in modalities if cohort[subject].has(m)]
            if not readable & set(has):
                raise ValueError(
                    f"subject {subject!r} (fold {split.fold}) has only {has}, which no training subject of "
                    f"fold {split.fold} has, so that fold's network cannot read it. Leave the modality out "
                    f"(--modalities {','.join(m for m in modalities if m not in has)}), leave the subject out, "
                    f"or give the modality to more subjects; a classical baseline (--fusion logistic | gbm | "
                    f"cox | rsf) reads such a subject as missing values")


def train_fold(config: TrainConfig, cohort: Cohort, split: FoldSplit, task: Task, modalities: list[str],
               fold_dir: Path, factory: ModelFactory, callbacks: Sequence[Callback] = (),
               moddrop_fn: Any = None) -> FoldOutputs | None:
    """Fit preprocessing and the fold's model; on rank 0 predict its held-out splits.

    The model is what ``config.model.fusion`` names: a fusion strategy (the uncertainty method's networks; member 0 in
    ``fold-<k>/``, member j in ``fold-<k>/member-<j>/``), a classical baseline, or ``auto``: chosen by
    inner cross-validation on this fold's training subjects (:mod:`fusemed.configure`).
    """
    L.seed_everything(config.seed + split.fold, workers=True, verbose=False)
    data = config.data
    readable = fold_modalities(cohort, split, modalities)
    prep = Preprocessing.fit(cohort, split.train, readable, data.spacing, data.grid, data.max_grid)
    if rank_zero_only.rank == 0:
        prep.save(fold_dir / "preprocessing.json")
    shapes = prep.shapes()
    slots = [Slot(m, cohort.spec.modalities[m].kind.value, shapes[m], cohort.spec.modalities[m].mesh)
             for m in readable]
    ctx = FoldContext(config, task, readable, slots, split.fold, factory, callbacks, moddrop_fn, modalities)

    def dataset(subjects: list[str], cache: bool = data.cache) -> CaseDataset:
        return CaseDataset([cohort[s] for s in subjects], readable, prep, task, cache)

    seed, extra = config.seed + split.fold, {}
    if config.model.fusion == "auto":
        from fusemed.configure.search import self_configure

        fit_subjects = split.train + split.val
        cases = [cohort[s] for s in fit_subjects]
        predictor, extra["configuration"] = self_configure(
            ctx, dataset(fit_subjects), fit_subjects, [task.strata(c) for c in cases], [c.site for c in cases],
            fold_dir)
    elif is_baseline(config.model.fusion):
        predictor = fit_baseline(ctx, config.model.fusion, dataset(split.train + split.val), seed)
    else:
        predictor = fit_deep(ctx, dataset(split.train), dataset(split.val), fold_dir, seed)
    if rank_zero_only.rank != 0:
        return None
    calib_subjects, source = (split.calibration, "calibration") if split.calibration else (split.val, "validation")

    def outputs(subjects: list[str]) -> SplitOutputs:
        cases = [cohort[s] for s in subjects]
        logits = predictor.predict(dataset(subjects, cache=False), ctx)
        return SplitOutputs(subjects, logits, stack_targets(task, cases), [pattern_of(c, modalities) for c in cases])

    result = FoldOutputs(split.fold, task.kind, outputs(calib_subjects), outputs(split.test), source)
    save_fold_outputs(fold_dir, result)
    save_predictor(fold_dir, predictor, ctx, **extra)
    atomic_write_json(fold_dir / "done.json", {"fold": split.fold, "predictor": predictor.kind})
    return result


def save_fold_outputs(fold_dir: Path, result: FoldOutputs) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, split in (("calibration", result.calibration), ("test", result.test)):
        arrays[f"{name}_subjects"] = np.asarray(split.subjects, dtype=str)
        arrays[f"{name}_logits"] = split.logits
        arrays[f"{name}_y"] = split.y
        arrays[f"{name}_patterns"] = np.asarray(split.patterns, dtype=str)
    arrays["calibration_source"] = np.asarray(result.calibration_source)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_save(fold_dir / "outputs.npz", save)


def load_fold_outputs(fold_dir: Path, fold: int, task_kind: str) -> FoldOutputs:
    with np.load(fold_dir / "outputs.npz", allow_pickle=False) as z:
        def split(name: str) -> SplitOutputs:
            return SplitOutputs(z[f"{name}_subjects"].tolist(), z[f"{name}_logits"], z[f"{name}_y"],
                                z[f"{name}_patterns"].tolist())

        return FoldOutputs(fold, task_kind, split("calibration"), split("test"), str(z["calibration_source"]))


def predictions_frame(split: SplitOutputs, task: Task, fold: int | None = None) -> pd.DataFrame:
    """``subject, fold, pattern, y_true, p`` (+ ``p_<k>`` multiclass, ``time, event`` survival).

    With a member axis, probabilities (risks for survival) are averaged over members.
    """
    probs = member_mean_probabilities(split.logits, task.kind)
    frame = pd.DataFrame({"subject": split.subjects})
    if fold is not None:
        frame["fold"] = fold
    frame["pattern"] = split.patterns
    y = split.y
    if task.kind == "survival":
        frame["y_true"] = y[:, 1].astype(int) if y is not None else np.nan
        frame["p"] = probs[:, 0]
        frame["time"] = y[:, 0] if y is not None else np.nan
        frame["event"] = y[:, 1].astype(int) if y is not None else np.nan
    else:
        frame["y_true"] = y.astype(int) if y is not None else np.nan
        if task.kind == "binary":
            frame["p"] = probs[:, 1]
        else:
            frame["p"] = probs.max(axis=1)
            frame["y_pred"] = probs.argmax(axis=1)
            for k in range(probs.shape[1]):
                frame[f"p_{k}"] = probs[:, k]
    return frame


def write_results(out: Path, config: TrainConfig, task: Task, modalities: list[str],
                  outputs: list[FoldOutputs], seconds: float | None = None) -> None:
    """Out-of-fold ``predictions.csv`` and ``metrics.json`` (plus the uncertainty step's, if any)."""
    frame = pd.concat([predictions_frame(o.test, task, o.fold) for o in outputs], ignore_index=True)
    extra_metrics: dict[str, Any] = {}
    if config.uncertainty.posthoc:
        method = config.uncertainty.build()
        post = Posthoc.fit(outputs, config.uncertainty, method, seed=config.seed)
        atomic_write_json(out / "posthoc.json", post.to_json())
        if post.classifies:
            columns = pd.concat([post.out_of_fold(o.fold, o.test.logits, o.test.patterns, method).set_axis(
                o.test.subjects) for o in outputs])
            frame = frame.drop(columns=[c for c in columns.columns if c in frame.columns])
            frame = frame.merge(columns, left_on="subject", right_index=True, how="left")
            extra_metrics = uncertainty_report(frame, alpha=config.uncertainty.alpha)
        extra_metrics["uncertainty"] = post.record()
    frame = frame.sort_values(["fold", "subject"]).reset_index(drop=True)
    atomic_write_csv(out / "predictions.csv", frame)
    metrics = discrimination_report(frame, task.kind, modalities)
    extra_patterns = extra_metrics.get("per_pattern", {})
    metrics.update({k: v for k, v in extra_metrics.items() if k != "per_pattern"})
    for pattern, values in extra_patterns.items():  # the uncertainty metrics join each pattern's entry
        metrics.setdefault("per_pattern", {}).setdefault(pattern, {}).update(values)
    if task.kind == "survival":
        metrics.update(out_of_fold_integrated_brier(*_survival_splits(outputs)))
    metrics["task"] = {"target": task.name, "kind": task.kind, "folds": config.data.folds,
                       "fusion": config.model.fusion}
    if seconds is not None:  # wall time of the invocation that finished the run (a resumed run: its last part)
        metrics["seconds"] = round(seconds, 1)
    chosen = configuration_summary(out)
    if chosen:
        metrics["configuration"] = chosen
    atomic_write_json(out / "metrics.json", metrics)


def configuration_summary(out: Path) -> dict[str, Any] | None:
    """What self-configuration chose in each fold (``fold-<k>/fold.json``), or None for a pinned model."""
    import json

    folds = {}
    for path in sorted(out.glob("fold-*/fold.json"), key=lambda p: int(p.parent.name.split("-")[1])):
        record = json.loads(path.read_text()).get("configuration")
        if record:
            folds[path.parent.name] = {k: record[k] for k in ("chosen", "scores", "pruned", "inner_folds", "why")}
    if not folds:
        return None
    counts: dict[str, int] = {}
    for record in folds.values():
        counts[record["chosen"]] = counts.get(record["chosen"], 0) + 1
    return {"chosen": counts, "folds": folds}


def _survival_splits(outputs: list[FoldOutputs]) -> tuple[list, list]:
    """Per fold (log-risk, time, event) of the calibration split (baseline) and of the test split."""

    def split(s: SplitOutputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits = np.asarray(s.logits, dtype=float)
        log_hz = (logits.mean(axis=0) if logits.ndim == 3 else logits).reshape(len(s.subjects), -1)[:, 0]
        return log_hz, s.y[:, 0], s.y[:, 1]

    return [split(o.calibration) for o in outputs], [split(o.test) for o in outputs]
