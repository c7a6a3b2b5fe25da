"""``fusemed advise`` in the report: the ranking on each patient card, and which exam most often changes the answer.

The advice is read from ``advice.csv`` in the focus run's folder (where ``fusemed advise RUN --out
RUN/advice.csv`` puts it) or from a file given to ``build_report``; subjects are matched by id, so advice
computed on another cohort simply shows on no card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fusemed.report.cards import Card

#: where the report looks for advice inside a run folder
ADVICE_FILE = "advice.csv"


def load_advice(run: Path | None, given: Path | None = None) -> pd.DataFrame | None:
    """The advice table: ``given``, else ``RUN/advice.csv``; ``None`` when there is none."""
    path = Path(given) if given is not None else (Path(run) / ADVICE_FILE if run is not None else None)
    if path is None or not path.is_file():
        if given is not None:
            raise FileNotFoundError(f"{given}: no such advice file (write it with `fusemed advise`)")
        return None
    return pd.read_csv(path, dtype={"subject": str, "modality": str})


def attach(cards: dict[str, list[Card]], advice: pd.DataFrame | None) -> None:
    """Put each carded patient's ranked candidates in ``card.advice`` (rank order)."""
    if advice is None:
        return
    by_subject = {s: rows.sort_values("rank") for s, rows in advice.groupby("subject", sort=False)}
    for group in cards.values():
        for card in group:
            rows = by_subject.get(card.subject)
            if rows is not None:
                card.advice = rows[["rank", "modality", "gain", "gain_low", "gain_high", "p_singleton",
                                    "p_flip"]].to_dict("records")


def exam_summary(advice: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per modality, over the cohort: patients lacking it, how often it is the exam to order first, the mean
    probability that it flips the decision and the mean expected entropy reduction; most often first on top."""
    if advice is None or advice.empty:
        return []
    rows = []
    for modality, group in advice.groupby("modality", sort=False):
        rows.append({"modality": modality, "missing": int(group["subject"].nunique()),
                     "first": int((group["rank"] == 1).sum()), "p_flip": float(group["p_flip"].mean()),
                     "p_singleton": float(group["p_singleton"].mean()), "gain": float(group["gain"].mean())})
    return sorted(rows, key=lambda r: (-r["first"], -r["p_flip"], r["modality"]))
