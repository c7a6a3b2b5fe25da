"""Curves over all binary runs: ROC, reliability (before/after calibration), risk–coverage."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from fusemed.report import metrics as M
from fusemed.report.figures import Figure, color, figure
from fusemed.report.runs import RunData


def roc_figure(runs: list[RunData]) -> Figure | None:
    """One ROC curve per binary run (scikit-learn), AUROC in the legend."""
    runs = [r for r in runs if r.binary]
    if not runs:
        return None
    with figure("roc", "ROC curves", "Out-of-fold predictions; diagonal = chance.") as (fig, ax, out):
        for i, run in enumerate(runs):
            frame = run.labelled()
            fpr, tpr, _ = roc_curve(frame["y_true"], frame["p"])
            auc = roc_auc_score(frame["y_true"], frame["p"])
            ax.plot(fpr, tpr, color=color(i), lw=1.8, label=f"{run.name} ({auc:.3f})")
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
        ax.set(xlabel="1 − specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(fontsize=8, loc="lower right", title="run (AUROC)", title_fontsize=8)
    return out["figure"]


def _reliability_panel(ax, y: np.ndarray, p: np.ndarray, label: str, c) -> float:
    bins = M.reliability(y, p)
    value = M.ece(y, p)
    ax.plot(bins["confidence"], bins["accuracy"], "o-", color=c, ms=4, lw=1.5, label=f"{label} (ECE {value:.3f})")
    return value


def reliability_figure(runs: list[RunData]) -> Figure | None:
    """Top-label reliability per run; a second panel shows the uncalibrated ``p_uncal`` when runs have it."""
    runs = [r for r in runs if r.binary]
    if not runs:
        return None
    has_uncal = [r for r in runs if "p_uncal" in r.labelled().columns]
    ncols = 2 if has_uncal else 1
    caption = ("Confidence of the predicted class vs how often it was right, 15 equal-width bins; "
               "points on the diagonal = calibrated; ECE is top-label.")
    if has_uncal:
        caption += " Left: before calibration (p_uncal), right: after."
    with figure("reliability", "Reliability diagrams" + (" before / after calibration" if has_uncal else ""),
                caption, size=(5.0 * ncols, 4.2), ncols=ncols) as (fig, axes, out):
        axes = np.atleast_1d(axes)
        panels = [(axes[0], "p_uncal", "before calibration"), (axes[1], "p", "after calibration")] if has_uncal \
            else [(axes[0], "p", "")]
        for ax, column, title in panels:
            for i, run in enumerate(runs):
                frame = run.labelled()
                if column not in frame.columns:
                    continue
                _reliability_panel(ax, frame["y_true"].to_numpy(), frame[column].to_numpy(), run.name, color(i))
            ax.plot([0.5, 1], [0.5, 1], ls=":", color="grey", lw=1)
            ax.set(xlabel="confidence (predicted class)", ylabel="accuracy", xlim=(0.48, 1.01), ylim=(0, 1.02),
                   title=title)
            ax.legend(fontsize=7, loc="upper left")
    return out["figure"]


def risk_coverage_figure(runs: list[RunData]) -> Figure | None:
    """Selective risk when only the most confident subjects are decided; lower and flatter is better."""
    runs = [r for r in runs if r.binary]
    if not runs:
        return None
    with figure("risk_coverage", "Risk–coverage curves",
                "Error rate among the k most confident subjects, as k grows; AURC = area under the curve.") \
            as (fig, ax, out):
        for i, run in enumerate(runs):
            frame = run.labelled()
            cov, risk, aurc = M.risk_coverage(frame["y_true"].to_numpy(), frame["p"].to_numpy())
            ax.plot(cov, risk, color=color(i), lw=1.6, label=f"{run.name} (AURC {aurc:.3f})")
        ax.set(xlabel="coverage (share of subjects decided)", ylabel="selective risk (error rate)", xlim=(0, 1))
        ax.legend(fontsize=8)
    return out["figure"]
