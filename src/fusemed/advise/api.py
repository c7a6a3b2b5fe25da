"""``advise_cohort``: per patient, per missing modality, the expected value of acquiring it, ranked.

For each patient of a cohort who lacks some of the run's modalities, and each modality m they lack:

1. the patient's answer now, through the run's folds and post-hoc steps (as ``fusemed predict`` gives it);
2. ``k`` donors — training subjects who have m, matched on the patient's observed modalities
   (:mod:`fusemed.advise.donors`);
3. each donor's m substituted into the patient's inputs and pushed through the same folds and post-hoc
   steps; the change summarised with intervals (:mod:`fusemed.advise.value`);
4. the patient's candidates ranked by expected entropy reduction (rank 1 = the exam to order first).

Subjects of the run's own training cohort are answered by the one fold model that never saw them (their
out-of-fold row, as ``predict`` does); anyone else by every fold model. Deterministic for a ``seed``: the
seed drives only the bootstrap and the breaking of exact ties between donors, and each patient gets its
own stream (its advice does not depend on who else is in the cohort).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from fusemed.advise.donors import nearest, prognostic_score
from fusemed.advise.scorer import Scorer
from fusemed.advise.value import Substitution, answers_after, value_of
from fusemed.cohort import Case, Cohort
from fusemed.run import Run
from fusemed.training.io import atomic_write_csv
from fusemed.training.module import ModelFactory
from fusemed.training.predict import own_folds

log = logging.getLogger(__name__)

#: the columns of ``advice.csv``, in order
COLUMNS = ["subject", "rank", "modality", "pattern", "source", "n_donors", "entropy_now", "entropy_after",
           "gain", "gain_low", "gain_high", "abstain_now", "p_singleton", "p_singleton_low", "p_singleton_high",
           "decision_now", "p_flip", "p_flip_low", "p_flip_high"]


def subject_rng(seed: int, subject: str, modality: str) -> np.random.Generator:
    """A stream of its own for each (patient, modality): advice is the same whoever else is advised."""
    return np.random.default_rng([seed, zlib.crc32(subject.encode()), zlib.crc32(modality.encode())])


def _load(cohort: str | Path | Cohort) -> Cohort:
    return cohort if isinstance(cohort, Cohort) else Cohort.load(cohort)


def donor_cohort(run: Path, donors: str | Path | Cohort | None) -> Cohort:
    """The cohort donors come from: given, else the run's training cohort (refused when it has moved)."""
    if donors is not None:
        return _load(donors)
    path = Path(Run.open(run).config.cohort)
    if not (path / "cohort.yaml").is_file():
        raise FileNotFoundError(f"donors come from the run's training cohort {path}, which is not there: give the "
                                "cohort that holds the training subjects (--donors DIR)")
    return Cohort.load(path)


def _match(scorer: Scorer, group: int | None, patients: list[Case], pool: list[Case], k: int,
           seed: int) -> list[Substitution]:
    """For every patient of ``group`` and every modality they lack, the ``k`` donors to substitute."""
    used = sorted(scorer.folds) if group is None else [group]
    score_now = prognostic_score(scorer.score({f: [scorer.inputs(p, f) for p in patients] for f in used}, group))
    by_pattern: dict[str, list[int]] = {}
    for i, p in enumerate(patients):
        by_pattern.setdefault(scorer.pattern(scorer.inputs(p, used[0])), []).append(i)
    substitutions = []
    for pattern, members in by_pattern.items():
        shown = set(pattern.split("+"))
        donors = [d for d in pool if shown & set(scorer.inputs(d, used[0]))]
        masked = {f: [{m: x for m, x in scorer.inputs(d, f).items() if m in shown} for d in donors] for f in used}
        score_donors = prognostic_score(scorer.score(masked, group))
        coverage = np.array([len(shown & set(scorer.inputs(d, used[0]))) / len(shown) for d in donors])
        for i in members:
            for m in scorer.modalities:
                if m in shown:
                    continue
                have = np.array([m in scorer.inputs(d, used[0]) for d in donors])
                if not have.any():
                    log.warning("no donor has %r: %s is not advised on it", m, patients[i].subject)
                    continue
                rows = np.flatnonzero(have)
                chosen = nearest(score_now[i], score_donors[rows], coverage[rows], k,
                                 subject_rng(seed, patients[i].subject, m))
                substitutions.append(Substitution(i, m, [donors[j] for j in rows[chosen]]))
    return substitutions


def rank(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank each subject's candidates: larger expected gain first, then larger P(singleton), then larger P(flip)."""
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    order = frame.sort_values(["gain", "p_singleton", "p_flip"], ascending=False, kind="stable", na_position="last")
    order["rank"] = order.groupby("subject", sort=False).cumcount() + 1
    first = {s: i for i, s in enumerate(dict.fromkeys(frame["subject"]))}
    order = order.iloc[np.lexsort((order["rank"].to_numpy(), order["subject"].map(first).to_numpy()))]
    return order[COLUMNS].reset_index(drop=True)


def advise_cohort(run: str | Path, cohort: str | Path | Cohort, *, donors: str | Path | Cohort | None = None,
                  k: int = 32, seed: int = 0, n_boot: int = 500, model_factory: ModelFactory | None = None,
                  out: str | Path | None = None) -> pd.DataFrame:
    """One row per subject × missing modality (:data:`COLUMNS`), ranked within subject.

    Args:
        run: a run folder with ``posthoc.json`` (trained with calibration or an uncertainty method).
        cohort: the patients; those missing none of the run's modalities get no row.
        donors: where plausible values of a missing modality come from (default: the run's training cohort).
        k: donors per (patient, modality).
        seed: bootstrap and tie-breaking seed (same seed, same advice).
        n_boot: bootstrap resamples of the donors for the intervals.
        model_factory: as in ``predict_cohort`` (custom networks).
        out: also write the frame there as CSV.

    Examples:
        >>> advice = advise_cohort("runs/coma-late", "new-patients")  # doctest: +SKIP
        >>> advice.query("rank == 1")[["subject", "modality", "gain", "p_singleton"]]  # doctest: +SKIP
    """
    if k < 2:
        raise ValueError(f"k = {k}: advise needs at least 2 donors per modality to say how much the answer varies")
    run = Path(run)
    scorer = Scorer.open(run, model_factory=model_factory)
    patients_cohort, pool_cohort = _load(cohort), donor_cohort(run, donors)
    for c in (patients_cohort, pool_cohort):
        scorer.check(c)
    mods = scorer.modalities
    patients = [c for c in patients_cohort if any(c.has(m) for m in mods) and not all(c.has(m) for m in mods)]
    pool = [c for c in pool_cohort if any(c.has(m) for m in mods)]
    own = own_folds(run, patients_cohort)
    groups: dict[int | None, list[Case]] = {}
    for c in patients:
        groups.setdefault(own.get(c.subject, (None, 0))[0], []).append(c)
    rows = []
    for group in sorted(groups, key=lambda g: -1 if g is None else g):
        members = groups[group]
        substitutions = _match(scorer, group, members, pool, k, seed)
        now, after = answers_after(scorer, group, members, substitutions)
        for s, frame in zip(substitutions, after, strict=True):
            patient = members[s.patient]
            value = value_of(now.iloc[[s.patient]], frame, subject_rng(seed + 1, patient.subject, s.modality), n_boot)
            rows.append({"subject": patient.subject, "modality": s.modality,
                         "pattern": scorer.pattern(scorer.inputs(patient, next(iter(scorer.folds)) if group is None
                                                                 else group)),
                         "source": "folds" if group is None else f"fold-{group}", "n_donors": len(frame), **value})
    order = {c.subject: i for i, c in enumerate(patients)}
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.iloc[np.argsort([order[s] for s in frame["subject"]], kind="stable")]
    frame = rank(frame)
    if out is not None:
        atomic_write_csv(Path(out), frame)
    return frame
