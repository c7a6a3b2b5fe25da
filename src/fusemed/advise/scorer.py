"""A trained run as a function of inputs: any set of preprocessed inputs → the run's calibrated columns.

``advise`` asks "what would this patient's answer be if modality m showed x?" many times over. The answer
must come from exactly the pipeline ``predict`` uses — each fold's own preprocessing and predictor
(:func:`fusemed.training.predict.load_folds`), the run's post-hoc steps (:meth:`Posthoc.apply`: temperature,
member summary, conformal sets) — or the advice would describe another model. So this module holds no
model logic: it keeps a fold's preprocessed inputs per case, lets a caller swap one modality in, and
pushes the result through the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from fusemed.cohort import Case, Cohort
from fusemed.run import Run
from fusemed.training.data import CaseDataset
from fusemed.training.module import ModelFactory
from fusemed.training.predict import LoadedFold, load_folds
from fusemed.uncertainty.methods import UncertaintyMethod
from fusemed.uncertainty.posthoc import Posthoc

log = logging.getLogger(__name__)

#: one subject's preprocessed inputs in a fold: ``{modality: tensor}``, a missing modality absent
Inputs = dict[str, torch.Tensor]


class InputsDataset(Dataset):
    """Items in :class:`~fusemed.training.data.CaseDataset`'s format built from inputs already preprocessed."""

    def __init__(self, inputs: list[Inputs]) -> None:
        self.inputs = inputs

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"subject": str(index), "inputs": self.inputs[index]}


def load_posthoc(run: Run) -> Posthoc:
    """The run's saved post-hoc steps; refused when advice would have no calibrated answer to change."""
    if run.kind != "prognosis":
        raise ValueError(f"{run.path}: a {run.kind} run; advise needs a diagnosis or prognosis run")
    posthoc = run.posthoc
    if posthoc is None:
        raise ValueError(f"{run.path}: no posthoc.json (saved calibration and conformal sets): advise needs them to "
                         "say how sure the answer is before and after an exam: retrain with --calibrate or an "
                         "uncertainty method (--uncertainty mc_dropout|ensemble|evidential)")
    if not posthoc.classifies:
        raise ValueError(f"{run.path}: a {posthoc.task_kind} run; advise needs calibrated class probabilities and "
                         "conformal sets, which fusemed fits for binary and multiclass targets only (survival runs "
                         "have none yet, so there is no entropy, set or operating point to change)")
    return posthoc


@dataclass
class Scorer:
    """A run's folds and post-hoc steps, with each case's preprocessed inputs kept per fold.

    Attributes:
        folds: fold number -> the loaded fold.
        modalities: the run's modalities, in its order (patterns are joined in this order).
    """

    folds: dict[int, LoadedFold]
    posthoc: Posthoc
    method: UncertaintyMethod
    modalities: list[str]
    _cache: dict[tuple[int, int], tuple[Case, Inputs]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run: str | Path, *, model_factory: ModelFactory | None = None, batch_size: int = 64) -> Scorer:
        """Load ``run`` (refused without ``posthoc.json`` or for a survival target)."""
        opened = Run.open(run)  # an older layout is refused before any model is read
        posthoc = load_posthoc(opened)
        folds = load_folds(opened.path, opened.config.updated(batch_size=batch_size), model_factory)
        return cls({f.k: f for f in folds}, posthoc, opened.config.uncertainty.build(),
                   list(folds[0].ctx.all_modalities))

    def check(self, cohort: Cohort) -> None:
        """Refuse a cohort whose tabular columns or modality kinds do not match the run's (before any model)."""
        for fold in self.folds.values():
            fold.preprocessing.check_cohort(cohort)
        kinds = {s.name: s.kind for s in next(iter(self.folds.values())).ctx.slots}
        for m in self.modalities:
            declared = cohort.spec.modalities.get(m)
            if declared is not None and declared.kind.value != kinds[m]:
                raise ValueError(f"cohort {cohort.name}: modality {m!r} is a {declared.kind.value}, "
                                 f"the run was trained on a {kinds[m]}")

    def inputs(self, case: Case, fold: int) -> Inputs:
        """``case``'s present modalities preprocessed by ``fold`` (read once per case and fold)."""
        key = (fold, id(case))
        if key not in self._cache:
            loaded = self.folds[fold]  # the modalities this fold reads (it may lack one no training subject had)
            item = CaseDataset([case], loaded.ctx.modalities, loaded.preprocessing, None, cache=False)[0]
            self._cache[key] = (case, item["inputs"])  # the case is kept so its id is never reused
        return self._cache[key][1]

    def pattern(self, inputs: Inputs) -> str:
        return "+".join(m for m in self.modalities if m in inputs)

    def score(self, inputs: dict[int, list[Inputs]], group: int | None,
              keys: list[str] | None = None) -> pd.DataFrame:
        """The run's columns (``p``, ``entropy``, ``conformal_set``, ``abstain``…) for rows of inputs.

        Args:
            inputs: fold -> one row of inputs per subject (the same subjects, in the same order, in every
                fold: each fold preprocesses them its own way).
            group: the fold whose test split these subjects were in (out-of-fold columns, that fold's
                model only), or ``None`` for subjects no fold trained on (every fold; the set from the fold
                their subject id is assigned to).
            keys: the subject id of each row (a patient's rows share its id, so its set has one fold).
        """
        used = sorted(self.folds) if group is None else [group]
        rows = inputs[used[0]]
        if not rows:
            return pd.DataFrame()
        patterns = [self.pattern(x) for x in rows]
        logits = {k: self.folds[k].predictor.predict(InputsDataset(inputs[k]), self.folds[k].ctx) for k in used}
        return self.posthoc.apply(logits, patterns, self.method, group, keys)


def decisions(frame: pd.DataFrame) -> np.ndarray:
    """The decision at the run's operating point: ``argmax`` (``y_pred``) for multiclass, ``p ≥ 0.5`` for binary."""
    if "y_pred" in frame:
        return frame["y_pred"].to_numpy(int)
    return (frame["p"].to_numpy(float) >= 0.5).astype(int)


def singletons(frame: pd.DataFrame) -> np.ndarray:
    """True where the conformal set holds one label (the patient is not abstained on); NaN without sets."""
    if "abstain" not in frame:
        return np.full(len(frame), np.nan)
    return (~frame["abstain"].to_numpy(bool)).astype(float)
