"""Performance by missing-modality pattern: AUROC heatmap, AUROC vs missing rate, conformal coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fusemed.evaluation.stats import auroc, bootstrap_auroc_ci
from fusemed.report import metrics as M
from fusemed.report.figures import Figure, color, figure
from fusemed.report.oracle import pattern_oracle, share
from fusemed.report.runs import RunData

#: fewest subjects (of either class) for a per-pattern AUROC to be shown
MIN_PER_CLASS = 2
#: patterns shown one by one in the heatmaps (most frequent); the rest are pooled into one row
MAX_PATTERNS = 8
OTHER = "other patterns"


def order_patterns(patterns: list[str]) -> list[str]:
    """Most complete first, then alphabetical, pooled ``other patterns`` last."""
    return sorted(set(patterns), key=lambda p: (p == OTHER, -len([m for m in p.split("+") if m]), p))


def frequent_patterns(runs: list[RunData], k: int = MAX_PATTERNS) -> list[str]:
    """The ``k`` patterns with the most subjects over all runs (each subject counted once)."""
    frames = [r.labelled()[["subject", "pattern"]] for r in runs if r.binary and "pattern" in r.labelled().columns]
    if not frames:
        return []
    counts = pd.concat(frames).drop_duplicates().groupby("pattern").size().sort_values(ascending=False, kind="stable")
    return [str(p) for p in counts.index[:k]]


def borrowed_folds(run: RunData, pattern: str) -> tuple[int, int]:
    """``(folds whose conformal threshold for pattern came from other patterns, folds with conformal sets)``.

    Pattern-conditional conformal needs ⌈(1−α)/α⌉ calibration subjects of the pattern in a fold; with
    fewer it borrows other patterns' (:func:`fusemed.uncertainty.conformal.calibration_members`), and the
    per-pattern guarantee no longer holds there: a coverage table must say so beside the number."""
    folds = ((run.metrics.get("uncertainty") or {}).get("folds")) or {}
    groups = [f.get("groups") for f in (folds.values() if isinstance(folds, dict) else folds)
              if isinstance(f, dict) and f.get("groups")]
    borrowed = sum(bool((g.get(pattern) or {}).get("fallback")) for g in groups)
    return borrowed, len(groups)


def pattern_table(runs: list[RunData], pool: bool = False, oracle: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long table ``run, pattern, n, auroc, coverage, set_size, alpha, oracle_auroc, oracle_share,
    borrowed`` over binary runs (``borrowed``: :func:`borrowed_folds` as "k/K", empty when none or pooled).

    With ``pool``, patterns outside the :data:`MAX_PATTERNS` most frequent are pooled as ``other patterns``
    (a cohort with 6 modalities has dozens of patterns, most with a handful of subjects). With an
    ``oracle`` truth holding ``p_observed``, ``oracle_auroc`` is the observed-data oracle's AUROC on the
    same subjects and ``oracle_share`` the run's share of its margin (NaN otherwise).
    """
    keep = set(frequent_patterns(runs)) if pool else None
    rows = []
    for run in runs:
        if not run.binary or "pattern" not in run.labelled().columns:
            continue
        frame = run.labelled()
        if keep is not None:
            frame = frame.assign(pattern=frame["pattern"].where(frame["pattern"].isin(keep), OTHER))
        sets = M.set_columns(frame)
        for pattern, group in frame.groupby("pattern"):
            counts = group["y_true"].value_counts()
            ok = len(counts) == 2 and counts.min() >= MIN_PER_CLASS
            in_sets = sets.loc[sets.index.intersection(group.index)]
            score = auroc(group["y_true"].to_numpy(), group["p"].to_numpy()) if ok else np.nan
            top = pattern_oracle(group, oracle, MIN_PER_CLASS)
            borrowed, folds = borrowed_folds(run, str(pattern))
            rows.append({
                "run": run.name, "pattern": str(pattern), "n": len(group), "auroc": score,
                "coverage": in_sets["covered"].mean() if len(in_sets) else np.nan,
                "set_size": in_sets["set_size"].mean() if len(in_sets) else np.nan,
                "alpha": run.alpha, "oracle_auroc": top, "oracle_share": share(score, top),
                "borrowed": f"{borrowed}/{folds}" if borrowed else "",
            })
    return pd.DataFrame(rows, columns=["run", "pattern", "n", "auroc", "coverage", "set_size", "alpha",
                                       "oracle_auroc", "oracle_share", "borrowed"])


def _heatmap(ax, values: pd.DataFrame, counts: pd.DataFrame, cmap: str, vmin: float, vmax: float, fmt: str) -> None:
    """``values`` and ``counts``: patterns (rows) × runs (columns); each cell annotated with value and n."""
    data = values.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            n = counts.iat[i, j]
            if np.isnan(n):
                continue
            text = "–" if np.isnan(data[i, j]) else format(data[i, j], fmt)
            r, g, b, _ = image.cmap(image.norm(data[i, j])) if not np.isnan(data[i, j]) else (1, 1, 1, 1)
            ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"  # readable on dark cells
            ax.text(j, i, f"{text} (n={int(n)})", ha="center", va="center", fontsize=7, color=ink)
    ax.set_xticks(range(data.shape[1]), values.columns, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(data.shape[0]), values.index, fontsize=8)
    ax.figure.colorbar(image, ax=ax, fraction=0.04)


def _grid(table: pd.DataFrame, value: str) -> tuple[pd.DataFrame, pd.DataFrame, tuple[float, float]]:
    rows = order_patterns(table["pattern"].tolist())
    runs = list(dict.fromkeys(table["run"]))
    values = table.pivot(index="pattern", columns="run", values=value).reindex(index=rows, columns=runs)
    counts = table.pivot(index="pattern", columns="run", values="n").reindex(index=rows, columns=runs)
    longest = max(len(r) for r in rows)
    size = (max(5.0, 1.5 + 0.065 * longest + 1.25 * len(runs)), max(2.2, 0.8 + 0.42 * len(rows)))
    return values, counts, size


def pattern_heatmap(table: pd.DataFrame) -> Figure | None:
    """Patterns × runs AUROC; '–' where a pattern has too few subjects of one class."""
    if table.empty:
        return None
    values, counts, size = _grid(table, "auroc")
    with figure("pattern_heatmap", "AUROC per missing-modality pattern",
                f"Each cell: AUROC on the subjects with exactly these modalities present; the {MAX_PATTERNS} most "
                "frequent patterns, the rest pooled; '–' = one class has fewer than 2 subjects.", size=size) \
            as (fig, ax, out):
        _heatmap(ax, values, counts, "viridis", 0.5, 1.0, ".2f")
        ax.set_ylabel("present modalities")
    return out["figure"]


def coverage_heatmap(table: pd.DataFrame) -> Figure | None:
    """Conformal coverage per pattern, coloured by its gap to the target 1 − α (red = under-covers)."""
    table = table.dropna(subset=["coverage"])
    if table.empty:
        return None
    values, counts, size = _grid(table, "coverage")
    target = 1 - float(table["alpha"].iloc[0])
    with figure("coverage_heatmap", "Conformal coverage per missing-modality pattern",
                f"Share of subjects whose prediction set holds their true outcome; target 1 − α = {target:.2f}. "
                "Red cells under-cover.", size=size) as (fig, ax, out):
        _heatmap(ax, values, counts, "RdYlGn", target - 0.25, min(1.0, target + 0.25), ".2f")
        ax.set_ylabel("present modalities")
    return out["figure"]


def missing_rate_figure(runs: list[RunData], *, n_boot: int = 500) -> Figure | None:
    """AUROC (95 % CI) versus the observed missing rate, one line per fusion strategy.

    Drawn only when the binary runs span at least two missing rates (e.g. a benchmark grid).
    """
    points = []
    for run in runs:
        rate = run.missing_rate()
        if not run.binary or rate is None:
            continue
        frame = run.labelled()
        ci = bootstrap_auroc_ci(frame["y_true"].to_numpy(), frame["p"].to_numpy(), n_boot=n_boot)
        points.append({"fusion": run.fusion, "rate": rate, "auroc": ci.estimate, "low": ci.low, "high": ci.high})
    table = pd.DataFrame(points)
    if table.empty or table["rate"].round(2).nunique() < 2:
        return None
    with figure("missing_rate", "AUROC versus missing rate",
                "Observed share of missing (subject, modality) slots; bars = 95 % bootstrap CI; "
                "runs of one strategy at the same rate are averaged.") as (fig, ax, out):
        for i, (fusion, group) in enumerate(table.groupby("fusion", sort=True)):
            g = group.assign(rate=group["rate"].round(2)).groupby("rate", as_index=False).mean(numeric_only=True)
            ax.errorbar(g["rate"], g["auroc"], yerr=[g["auroc"] - g["low"], g["high"] - g["auroc"]],
                        color=color(i), marker="o", capsize=3, lw=1.5, label=fusion)
        ax.set(xlabel="missing rate", ylabel="AUROC", ylim=(0.4, 1.02))
        ax.axhline(0.5, ls=":", color="grey", lw=1)
        ax.legend(fontsize=8)
    return out["figure"]
