"""Per-patient cards: the subjects a clinician should look at first (most uncertain, most wrong).

A card says what the model predicted, how sure it was (ensemble interval, conformal set, the split of
predictive entropy into aleatoric and epistemic parts) and which modalities it saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fusemed.report.runs import RunData, parse_set

LN2 = math.log(2.0)  # the largest binary entropy, in nats: scales the uncertainty bars


@dataclass
class Card:
    """What one patient card shows; fractions are in [0, 1] for the CSS bars."""

    subject: str
    y_true: int
    p: float
    p_low: float | None
    p_high: float | None
    conformal_set: str | None
    abstain: bool | None
    present: list[str]
    missing: list[str]
    entropy: float | None
    aleatoric: float | None
    epistemic: float | None
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)
    advice: list[dict[str, Any]] = field(default_factory=list)  # `fusemed advise` rows, rank order

    @property
    def wrong(self) -> bool:
        return (self.p >= 0.5) != bool(self.y_true)

    def frac(self, value: float | None) -> float:
        return 0.0 if value is None else float(min(max(value / LN2, 0.0), 1.0))


def _float(row: pd.Series, key: str) -> float | None:
    value = row.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _card(row: pd.Series, modalities: list[str], reason: str) -> Card:
    pattern = str(row.get("pattern") or "")
    present = [m for m in pattern.split("+") if m]
    s = parse_set(row.get("conformal_set"))
    abstain = row.get("abstain")
    return Card(
        subject=str(row["subject"]), y_true=int(row["y_true"]), p=float(row["p"]),
        p_low=_float(row, "p_low"), p_high=_float(row, "p_high"),
        conformal_set=None if s is None else "{" + ",".join(str(v) for v in sorted(s)) + "}",
        abstain=None if abstain is None or (isinstance(abstain, float) and math.isnan(abstain)) else bool(abstain),
        present=present, missing=[m for m in modalities if m not in present],
        entropy=_float(row, "entropy"), aleatoric=_float(row, "aleatoric"), epistemic=_float(row, "epistemic"),
        reason=reason,
    )


def uncertainty_score(frame: pd.DataFrame) -> pd.Series:
    """Total predictive entropy when the run has it, else closeness of ``p`` to 0.5."""
    if "entropy" in frame.columns and frame["entropy"].notna().any():
        return frame["entropy"].fillna(0.0)
    p = frame["p"].clip(1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def select_cards(run: RunData, k: int = 4) -> dict[str, list[Card]]:
    """``{"uncertain": [...], "wrong": [...]}``: the k most uncertain and the k most confidently wrong."""
    frame = run.labelled()
    if frame.empty:
        return {"uncertain": [], "wrong": []}
    mods = run.modalities
    unc = uncertainty_score(frame)
    uncertain = frame.loc[unc.sort_values(ascending=False, kind="stable").index[:k]]
    error = (frame["p"] - frame["y_true"]).abs()
    wrong = frame.loc[error[error > 0.5].sort_values(ascending=False, kind="stable").index[:k]]
    return {
        "uncertain": [_card(r, mods, f"entropy rank {i + 1}") for i, (_, r) in enumerate(uncertain.iterrows())],
        "wrong": [_card(r, mods, f"error |p − y| = {abs(r['p'] - r['y_true']):.2f}") for _, r in wrong.iterrows()],
    }


def focus_run(runs: list[RunData]) -> RunData | None:
    """The run whose patients get cards: the best-AUROC binary run whose members disagree somewhere (epistemic
    uncertainty to show: MC dropout, ensembles, evidential), else one with uncertainty columns, else the best."""
    from fusemed.evaluation.stats import auroc

    binary = [r for r in runs if r.binary]
    if not binary:
        return None

    def key(r: RunData) -> tuple[bool, bool, float]:
        f = r.labelled()
        value = auroc(f["y_true"].to_numpy(), f["p"].to_numpy())
        members = "epistemic" in f.columns and bool((f["epistemic"].fillna(0) > 0).any())
        return members, "entropy" in f.columns or "conformal_set" in f.columns, -1.0 if math.isnan(value) else value

    return max(binary, key=key)
