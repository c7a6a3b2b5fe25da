"""Choose a fold's model by inner cross-validation on its training subjects only (Optuna drives the trials).

Each candidate (a classical baseline or a fusion strategy with the fingerprint's plan) is one Optuna trial,
enqueued in the space's order. A trial fits the candidate on each inner fold's training subjects and
scores it on the inner held-out subjects; after every inner fold it reports the running score, so Optuna's
``MedianPruner`` can stop a network that is already below the median of those tried before it (the
baselines come first and cost little, so they set the bar cheaply). A classical baseline is never pruned:
stopping it saves seconds, and judging it on one of two inner folds discarded gbm (and so its blend with
logistic) in 6 of the 15 outer folds of the independent generator's benchmark. The winner has the best inner score
(ties: lower log-loss, then the earlier, simpler candidate). A winning baseline is refitted on all the
fold's training subjects; a winning network keeps its inner-fold models as a cross-fitted ensemble
(nnU-Net's fold ensemble), so no network is trained twice. Every trial goes to ``fold-<k>/trials.csv``.

The outer test fold never enters: preprocessing was fitted on the outer training split, and the inner
folds partition the outer training + validation subjects.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score
from torch.utils.data import Dataset, Subset

from fusemed.configure.fingerprint import fingerprint, plan
from fusemed.configure.space import is_baseline
from fusemed.evaluation.metrics import centre_per_fold, fold_c_index
from fusemed.training.io import atomic_write_csv
from fusemed.training.learners import (
    BlendPredictor,
    DeepPredictor,
    FoldContext,
    Predictor,
    dataset_targets,
    fit_baseline,
    fit_deep,
)
from fusemed.training.splits import make_folds
from fusemed.uncertainty.outputs import member_mean_probabilities

log = logging.getLogger(__name__)


def inner_score(kind: str, metric: str, y: np.ndarray, p: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """``(score, log-loss)`` of pooled inner out-of-fold outputs; survival risks are scored per inner fold
    (their offsets differ between fits) and averaged. Higher score is better; log-loss breaks ties."""
    if kind == "survival":
        value = fold_c_index(y[:, 0], y[:, 1], p[:, 0], folds)["c_index"]
        return (value if value is not None else 0.5), 0.0
    labels = np.arange(p.shape[1])
    q = np.clip(p, 1e-7, 1)
    nll = float(log_loss(y, q / q.sum(axis=1, keepdims=True), labels=labels))
    metric = {"binary": "auroc", "multiclass": "balanced_accuracy"}[kind] if metric == "auto" else metric
    if metric == "neg_log_loss":
        return -nll, nll
    if metric == "balanced_accuracy":
        return float(balanced_accuracy_score(y, p.argmax(axis=1))), nll
    if len(np.unique(y)) < 2:
        return 0.5, nll
    if kind == "binary":
        return float(roc_auc_score(y, p[:, 1])), nll
    return float(roc_auc_score(y, p, multi_class="ovr", labels=labels)), nll


def _final(ctx: FoldContext, name: str, dataset: Dataset, fitted: dict[str, list[Predictor]],
           deep: dict[str, Any]) -> Predictor:
    """A chosen baseline refitted on every training subject of the fold; a chosen network's inner models."""
    if is_baseline(name):
        return fit_baseline(ctx, name, dataset, ctx.config.seed + ctx.fold)
    members = [m for fit in fitted[name] for m in fit.members]  # type: ignore[attr-defined]
    paths = [p for fit in fitted[name] for p in fit.paths]  # type: ignore[attr-defined]
    return DeepPredictor(members, paths, {**deep, "fusion": name})


def risk_scale(p: np.ndarray, folds: np.ndarray) -> float:
    """Spread of a candidate's inner out-of-fold log-risks around each inner fit's own centre (a Cox fit's
    offset is arbitrary, so only the spread within a fit is comparable between candidates)."""
    return float(centre_per_fold(p[:, 0], folds).std()) or 1.0


def best_blend(kind: str, metric: str, oof: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
               ranked: list[str], best: float) -> tuple[list[str], float, list[float] | None] | None:
    """The average of the top 2 or top 3 candidates, if its pooled inner score beats ``best`` (computed from
    the trials' own inner out-of-fold outputs: no model is fitted for it). Classification averages
    probabilities with equal weights; survival averages log-risks each divided by its inner spread
    (``risk_scale``), so a candidate whose risks span a wider range does not dominate; those weights are
    returned with the names (``None`` for classification)."""
    found = None
    for k in (2, 3):
        names = [n for n in ranked if n in oof][:k]
        if len(names) < k:
            break
        y, _, folds = oof[names[0]]
        weights = [1.0 / (k * risk_scale(oof[n][1], folds)) for n in names] if kind == "survival" else None
        blended = (sum(w * oof[n][1] for w, n in zip(weights, names, strict=True)) if weights is not None
                   else np.mean([oof[n][1] for n in names], axis=0))
        score, _ = inner_score(kind, metric, y, blended, folds)
        if score > (found[1] if found else best) + 1e-9:
            found = (names, score, weights)
    return found


def self_configure(ctx: FoldContext, dataset: Dataset, subjects: list[str], strata: list[str],
                   sites: list[str | None], fold_dir: Path) -> tuple[Predictor, dict[str, Any]]:
    """Pick and fit the fold's model among ``config.model.search`` candidates; return it and the record of why."""
    config, kind = ctx.config, ctx.task.kind
    y = dataset_targets(dataset)
    present = np.array([[m in dataset[i]["inputs"] for m in ctx.modalities] for i in range(len(dataset))])
    fp = fingerprint(ctx.task, ctx.slots, present, y)
    deep = {k: v for k, v in plan(fp).items() if k not in config.pinned}
    deep["model"] = {**deep.get("model", {}), **config.model.options}
    search = config.model.search
    names, k = search.resolve(kind, fp.n, fp.n_features)
    if ctx.method.needs_network:  # mc_dropout / ensemble / evidential members come from networks
        names = [n for n in names if not is_baseline(n)] or names
    inner = make_folds(subjects, strata, sites, k, config.seed + 31 * (ctx.fold + 1), config.data.val_fraction)
    index = {s: i for i, s in enumerate(subjects)}
    fitted: dict[str, list[Predictor]] = {}
    oof: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # name -> pooled inner (y, p, inner fold)

    def subset(ids: list[str]) -> Subset:
        return Subset(dataset, [index[s] for s in ids])

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("candidate", names)
        outs, ys, fold_ids, members = [], [], [], []
        for j, split in enumerate(inner):
            seed = config.seed + ctx.fold + 100 * j
            if is_baseline(name):
                model: Predictor = fit_baseline(ctx, name, subset(split.train + split.val), seed)
            else:
                model = fit_deep(ctx, subset(split.train), subset(split.val), fold_dir, seed,
                                 subdir=f"search/{name}/inner-{j}", overrides={**deep, "fusion": name}, members=1)
            test = subset(split.test)
            outs.append(member_mean_probabilities(model.predict(test, ctx), kind))
            ys.append(y[[index[s] for s in split.test]])
            fold_ids.append(np.full(len(split.test), j))
            members.append(model)
            score, nll = inner_score(kind, search.metric, np.concatenate(ys), np.concatenate(outs),
                                     np.concatenate(fold_ids))
            trial.report(score, j)
            if search.prune and not is_baseline(name) and j < len(inner) - 1 and trial.should_prune():
                trial.set_user_attr("inner_folds_run", j + 1)
                raise optuna.TrialPruned()
        trial.set_user_attr("nll", nll)
        trial.set_user_attr("inner_folds_run", len(inner))
        fitted[name] = members
        oof[name] = (np.concatenate(ys), np.concatenate(outs), np.concatenate(fold_ids))
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    for name in names:
        study.enqueue_trial({"candidate": name})
    study.optimize(objective, n_trials=len(names))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(done, key=lambda t: (round(t.value, 6), -t.user_attrs.get("nll", 0.0), -t.number))
    chosen = best.params["candidate"]
    blend = best_blend(kind, search.metric, oof, [t.params["candidate"] for t in sorted(
        done, key=lambda t: -t.value)], best.value) if search.blend else None
    trials = study.trials_dataframe(attrs=("number", "params", "value", "state", "user_attrs", "duration"))
    trials["duration"] = trials["duration"].dt.total_seconds()
    if blend is not None:
        trials.loc[len(trials), ["params_candidate", "value", "state"]] = ["+".join(blend[0]), blend[1], "BLEND"]
    atomic_write_csv(fold_dir / "trials.csv", trials)
    keep = set(blend[0]) if blend is not None else {chosen}
    for name in names:  # losers' trial networks are on record in trials.csv; their weights are not kept
        if name not in keep:
            shutil.rmtree(fold_dir / "search" / name, ignore_errors=True)
    parts = [_final(ctx, name, dataset, fitted, deep) for name in (blend[0] if blend else [chosen])]
    predictor: Predictor = BlendPredictor(parts, kind, blend[2]) if blend is not None else parts[0]
    scores = {t.params["candidate"]: (None if t.value is None or not math.isfinite(t.value) else round(t.value, 4))
              for t in study.trials}
    if blend is not None:
        chosen = " + ".join(sorted(blend[0]))  # one name per blend, whatever the ranking order
        scores[chosen] = round(blend[1], 4)
    record = {"chosen": chosen, "scores": scores, "inner_folds": k, "candidates": names,
              "pruned": [t.params["candidate"] for t in study.trials if t.state == optuna.trial.TrialState.PRUNED],
              "fingerprint": fp.to_dict(), "plan": deep,
              "why": f"best inner {k}-fold score {scores[chosen]} among {len(done)} completed candidates"}
    log.info("fold %d: self-configuration chose %s (%s)", ctx.fold, chosen, scores)
    return predictor, record
