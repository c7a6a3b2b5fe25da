"""Subject-level cross-validation: outer folds stratified by outcome and site, nested inner splits.

Every subject is tested exactly once. Each outer training part is split again into ``train`` (fits the
weights and the preprocessing), ``val`` (early stopping) and optionally ``calibration`` (held out for
post-hoc calibration / conformal, issue 5).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

log = logging.getLogger(__name__)


@dataclass
class FoldSplit:
    """Subject ids of one outer fold."""

    fold: int
    train: list[str]
    val: list[str]
    test: list[str]
    calibration: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _joint_labels(labels: list[str], sites: list[str | None], k: int) -> list[str] | None:
    """Outcome x site when every stratum can fill k folds, else outcome alone, else None (plain K-fold)."""
    joint = [f"{y}|{s}" for y, s in zip(labels, sites, strict=True)]
    if len(set(sites)) > 1 and min(Counter(joint).values()) >= k:
        return joint
    if min(Counter(labels).values()) >= k:
        if len(set(sites)) > 1:
            log.info("some outcome x site strata have fewer than %d subjects: stratifying by outcome only", k)
        return labels
    log.warning("an outcome class has fewer than %d subjects: folds are not stratified", k)
    return None


def _holdout(subjects: list[str], strata: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split off ``fraction`` of subjects, stratified when every stratum has at least 2 members."""
    n_out = max(1, int(round(fraction * len(subjects))))
    stratify = strata if min(Counter(strata).values()) >= 2 and n_out >= len(set(strata)) else None
    keep, out = train_test_split(subjects, test_size=n_out, random_state=seed, stratify=stratify)
    return list(keep), list(out)


def make_folds(subjects: list[str], labels: list[str], sites: list[str | None], k: int, seed: int,
               val_fraction: float = 0.2, calibration_fraction: float = 0.0) -> list[FoldSplit]:
    """Outer K folds + inner validation (and calibration) splits, all seeded.

    Args:
        subjects: subject ids (one row per subject: the split is at subject level by construction).
        labels: stratification label per subject (class, or event indicator for survival).
        sites: acquisition site per subject (``None`` if unknown).
    """
    if len(subjects) < k:
        raise ValueError(f"{len(subjects)} subjects cannot fill {k} folds")
    strata = _joint_labels(labels, sites, k)
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed) if strata else KFold(k, shuffle=True,
                                                                                        random_state=seed)
    ids = np.asarray(subjects)
    label_of = dict(zip(subjects, labels, strict=True))
    folds = []
    for i, (tr, te) in enumerate(splitter.split(ids, strata or labels)):
        part = list(ids[tr])
        part_labels = [labels[j] for j in tr]
        calibration: list[str] = []
        try:
            if calibration_fraction > 0:
                part, calibration = _holdout(part, part_labels, calibration_fraction, seed + i)
                part_labels = [label_of[s] for s in part]
            train, val = _holdout(part, part_labels, val_fraction, seed + 100 + i)
        except ValueError:  # sklearn's own words name test_size, not the cohort
            need = 3 if calibration_fraction > 0 else 2
            raise ValueError(
                f"fold {i}: its {len(tr)} training subjects cannot be split into train / validation"
                f"{' / calibration' if calibration_fraction > 0 else ''} (at least {need} needed); "
                f"use fewer --folds or more subjects ({len(subjects)} subjects, {k} folds)"
            ) from None
        folds.append(FoldSplit(i, sorted(train), sorted(val), sorted(ids[te].tolist()), sorted(calibration)))
    return folds
