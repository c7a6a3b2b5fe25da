"""Every model against the best classical baseline, on the same subjects and folds, across seeds.

For one cohort the benchmark holds out-of-fold predictions of several models, each trained with several
seeds (a seed fixes the folds, so a model and a baseline of the same seed are scored on the same splits).
The headline score is the task's usual one: AUROC (binary), balanced accuracy (multiclass), Harrell's
C-index (survival: the mean of the per-fold C-indices, as ``metrics.json``'s ``c_index``; a Cox fit's
offset is arbitrary, so pairs never cross folds). A model's difference to the best baseline (highest mean score) is
the mean over seeds of the per-seed difference; its 95 % CI and two-sided p-value come from a paired
percentile bootstrap over subjects (the same resampled subjects for every seed and both models), and the
p-values of one cohort's table are Holm-corrected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

HEADLINE = {"binary": "auroc", "multiclass": "balanced_accuracy", "survival": "c_index"}


def weighted_scorer(kind: str, frame: pd.DataFrame) -> Callable[[np.ndarray], float]:
    """``score(w)`` of one run's predictions under subject weights ``w`` (bootstrap counts; ones = plain)."""
    if kind == "binary":
        y, p = frame["y_true"].to_numpy(dtype=int), frame["p"].to_numpy(dtype=float)
        pos, neg = y == 1, y == 0
        greater = (p[pos][:, None] > p[neg][None, :]) + 0.5 * (p[pos][:, None] == p[neg][None, :])

        def auroc(w: np.ndarray) -> float:
            wp, wn = w[pos], w[neg]
            total = wp.sum() * wn.sum()
            return float(wp @ greater @ wn / total) if total else np.nan

        return auroc
    if kind == "multiclass":
        y, pred = frame["y_true"].to_numpy(dtype=int), frame["y_pred"].to_numpy(dtype=int)
        classes = np.unique(y)
        hit = (y == pred).astype(float)

        def balanced(w: np.ndarray) -> float:
            recalls = [(w[y == c] @ hit[y == c]) / w[y == c].sum() for c in classes if w[y == c].sum() > 0]
            return float(np.mean(recalls)) if recalls else np.nan

        return balanced
    time, event = frame["time"].to_numpy(dtype=float), frame["event"].to_numpy(dtype=bool)
    risk = frame["p"].to_numpy(dtype=float)
    folds = frame["fold"].to_numpy() if "fold" in frame else np.zeros(len(frame))
    pairs = []  # per fold: its subjects, comparable pairs, concordant pairs (i has the event before j's time)
    for fold in np.unique(folds):
        mine = np.flatnonzero(folds == fold)
        t, e, r = time[mine], event[mine], risk[mine]
        comparable = ((t[:, None] < t[None, :]) & e[:, None]).astype(float)
        pairs.append((mine, comparable, comparable * ((r[:, None] > r[None, :]) + 0.5 * (r[:, None] == r[None, :]))))

    def c_index(w: np.ndarray) -> float:  # mean over folds of each fold's weighted Harrell's C
        values = [w[i] @ conc @ w[i] / total for i, comp, conc in pairs if (total := w[i] @ comp @ w[i])]
        return float(np.mean(values)) if values else np.nan

    return c_index


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjustment (NaN stays NaN)."""
    values = np.asarray(p, dtype=float)
    order = [i for i in np.argsort(values) if np.isfinite(values[i])]
    adjusted = np.full(len(values), np.nan)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def versus_best_baseline(runs: dict[tuple[str, int], pd.DataFrame], kind: str, baselines: list[str], *,
                         n_boot: int = 1000, seed: int = 0, references: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per model: score mean, sd, min, max over seeds; Δ to the best baseline with CI, p, Holm p.

    Args:
        runs: ``(model, seed) -> predictions.csv`` frame (out-of-fold, one row per subject).
        kind: "binary" | "multiclass" | "survival".
        baselines: which model names are classical baselines.
        references: rows shown with their Δ and CI but not tested (no p, outside the Holm family): the
            oracles of a simulated cohort are limits, not hypotheses, and must not inflate the models' p.
    """
    models = sorted({m for m, _ in runs}, key=lambda m: (m not in baselines, m))
    seeds = sorted({s for _, s in runs})
    subjects = sorted(set.intersection(*(set(f["subject"]) for f in runs.values())))
    scorers = {key: weighted_scorer(kind, f.set_index("subject").loc[subjects].reset_index())
               for key, f in runs.items()}
    ones = np.ones(len(subjects))
    scores = {m: [scorers[(m, s)](ones) for s in seeds if (m, s) in scorers] for m in models}
    candidates = [m for m in models if m in baselines and len(scores[m]) == len(seeds)]
    best = max(candidates, key=lambda m: np.nanmean(scores[m])) if candidates else None
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(subjects), ones / len(subjects), size=n_boot).astype(float)
    rows = []
    for m in models:
        row = {"model": m, "baseline": m in baselines, "seeds": len(scores[m]), "n": len(subjects),
               "score": float(np.nanmean(scores[m])), "sd": float(np.nanstd(scores[m], ddof=1))
               if len(scores[m]) > 1 else np.nan, "min": float(np.nanmin(scores[m])),
               "max": float(np.nanmax(scores[m])), "best_baseline": best,
               "diff": np.nan, "diff_low": np.nan, "diff_high": np.nan, "p": np.nan}
        paired = [s for s in seeds if (m, s) in scorers and (best, s) in scorers]
        if best is not None and m != best and paired:
            row["diff"] = float(np.mean([scorers[(m, s)](ones) - scorers[(best, s)](ones) for s in paired]))
            boot = np.array([np.mean([scorers[(m, s)](w) - scorers[(best, s)](w) for s in paired])
                             for w in weights])
            boot = boot[np.isfinite(boot)]
            if len(boot):
                row["diff_low"], row["diff_high"] = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
                if m not in references:
                    row["p"] = float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["p_holm"] = holm(frame["p"].tolist())
    frame.insert(1, "metric", HEADLINE[kind])
    return frame
