"""What a run fits after its folds are trained, saved with the run and applied again by ``predict``.

:meth:`Posthoc.fit` takes every fold's held-out outputs (:class:`FoldOutputs`) and fits:

* **one temperature** (Guo et al. 2017) on the folds' calibration splits pooled (each scored by its own
  fold's model). At small n a temperature can make things worse, so it is cross-fitted first: for each
  fold, T fitted on the *other* folds' calibration splits is scored on this fold's; T is kept only if that
  lowers the held-out NLL without raising the held-out ECE, else T = 1 and the record says why.
* **split-conformal thresholds per fold** (Mondrian by missing pattern, class or none; small-group
  fallbacks), on the fold's calibration split: the sets of the out-of-fold subjects.
* **the out-of-fold scores of every training subject**, for the sets of *new* subjects. A new subject is
  assigned one fold by a hash of its id (and the run's seed), and gets that fold model's split-conformal set,
  calibrated on every subject the fold model never saw: its test split (out-of-fold scores) and its held-out
  calibration split. The new subject is exchangeable with those, so 1 − α ≤ P(Y ∈ C) ≤ 1 − α + 1/(n_k + 1)
  (Vovk; Lei et al. 2018), n_k ≈ (n/K)(1 + calibration share) the fold's calibration size. Cross-conformal
  aggregation over all folds (Barber et al. 2021) was tried first: it guarantees only 1 − 2α and, with
  networks that vary from fold to fold, over-covered (0.93 for α = 0.1 in benchmarks/transfer.md).

:meth:`Posthoc.out_of_fold` gives a fold's own subjects their columns (training, and ``predict`` on the
training cohort reproduces them); :meth:`Posthoc.new_subjects` gives anyone else the mean of every fold
model's members as ``p`` and their assigned fold's set.
Everything is JSON (``RUN/posthoc.json``), never pickle.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fusemed.evaluation import uncertainty_metrics as um
from fusemed.uncertainty.calibration import T_RANGE, fit_pooled_temperature, logits_to_probs
from fusemed.uncertainty.config import UncertaintyConfig
from fusemed.uncertainty.conformal import ConformalClassifier, format_sets
from fusemed.uncertainty.entropy import summarize_members
from fusemed.uncertainty.methods import UncertaintyMethod
from fusemed.uncertainty.outputs import FoldOutputs

log = logging.getLogger(__name__)

LAYOUT = 1
#: seed offsets of the members drawn for calibration and test splits (evidential draws)
CAL_SEED, TEST_SEED = 0, 10_000


def member_probs(z: np.ndarray) -> np.ndarray:
    """`(K, n, 1)` binary logits → `(K, n, 2)`; `(K, n, C)` → softmax `(K, n, C)`."""
    if z.shape[-1] == 1:
        p1 = logits_to_probs(z, binary=True)  # (K, n): the trailing 1 only (z[..., 0] of one member and one
        # subject, (1, 1), would lose its subject axis too)
        return np.stack([1.0 - p1, p1], axis=-1)
    return logits_to_probs(z, binary=False)


def _scaled(z: np.ndarray, temperature: float) -> np.ndarray:
    return np.asarray(z, dtype=float) / temperature


def _nll_ece(z: np.ndarray, y: np.ndarray, temperature: float) -> tuple[np.ndarray, float]:
    """Per-subject NLL ``(n,)`` and the ECE of member-averaged probabilities at ``temperature``."""
    p = member_probs(_scaled(z, temperature)).mean(axis=0)
    nll = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))
    return nll, um.ece(y, p[:, 1] if p.shape[1] == 2 else p)


#: the cross-fitted NLL gain must exceed this many standard errors (paired over subjects) for T to be kept
MIN_Z = 2.0


def fit_temperature(calibration: dict[int, tuple[np.ndarray, np.ndarray]], calibrate: bool) -> tuple[float, dict]:
    """``(T, record)`` from per-fold ``(member logits (K, n, C), labels)`` of the calibration splits.

    T is kept only when the cross-fitted gain is clear: the held-out NLL drops by more than ``MIN_Z`` paired
    standard errors and the held-out ECE does not rise. At tens of calibration subjects a fitted T is mostly
    noise, and a noisy T makes the out-of-fold ECE worse (measured in ``make demo``), so T = 1 is the default.
    """
    if not calibrate:
        return 1.0, {"applied": False, "why": "not requested (calibrate: false)"}
    if len(calibration) < 2 or sum(len(y) for _, y in calibration.values()) < 10:
        return 1.0, {"applied": False, "why": "fewer than 10 calibration subjects over the folds: left at T = 1"}
    fitted = fit_pooled_temperature(list(calibration.values()))
    gains, ece = [], {"uncalibrated": 0.0, "calibrated": 0.0}
    total = sum(len(y) for _, y in calibration.values())
    for k, (z, y) in calibration.items():
        t_k = fit_pooled_temperature([v for j, v in calibration.items() if j != k])
        before, ece_before = _nll_ece(z, y, 1.0)
        after, ece_after = _nll_ece(z, y, t_k)
        gains.append(before - after)
        ece["uncalibrated"] += ece_before * len(y) / total
        ece["calibrated"] += ece_after * len(y) / total
    gain = np.concatenate(gains)
    z_gain = float(gain.mean() / (gain.std(ddof=1) / np.sqrt(len(gain)))) if gain.std(ddof=1) > 0 else 0.0
    record: dict[str, Any] = {"fitted": fitted, "n_calibration": total, "cross_fitted": {
        "nll_gain": round(float(gain.mean()), 4), "nll_gain_z": round(z_gain, 2),
        "ece_uncalibrated": round(ece["uncalibrated"], 4), "ece_calibrated": round(ece["calibrated"], 4)}}
    if not T_RANGE[0] <= fitted <= T_RANGE[1]:
        return 1.0, {**record, "applied": False, "why": f"T = {fitted:.3g} outside {T_RANGE} (degenerate split)"}
    if z_gain < MIN_Z or ece["calibrated"] > ece["uncalibrated"]:
        return 1.0, {**record, "applied": False,
                     "why": f"cross-fitted gain not clear (NLL gain {gain.mean():+.4f}, z = {z_gain:.2f} < {MIN_Z}, "
                            "or ECE higher): left at T = 1"}
    return fitted, {**record, "applied": True,
                    "why": f"lowers cross-fitted held-out NLL (z = {z_gain:.2f}) without raising ECE"}


@dataclass
class Posthoc:
    """Everything fitted after training, per run: applied to out-of-fold and to new subjects alike."""

    task_kind: str
    config: UncertaintyConfig
    temperature: float = 1.0
    temperature_record: dict[str, Any] = field(default_factory=dict)
    conformal: dict[int, ConformalClassifier] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    oof: dict[str, list] = field(default_factory=dict)  # fold, score, pattern, label of every OOF subject
    seed: int = 0

    @property
    def classifies(self) -> bool:
        return self.task_kind in ("binary", "multiclass")

    # -- fitting -------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, folds: list[FoldOutputs], config: UncertaintyConfig, method: UncertaintyMethod,
            seed: int = 0) -> Posthoc:
        """Temperature, per-fold conformal thresholds and out-of-fold scores from every fold's outputs."""
        kind = folds[0].task_kind if folds else "binary"
        post = cls(kind, config, seed=seed)
        if not post.classifies:
            post.temperature_record = {"applied": False, "why": f"{kind} targets get no calibration or sets yet"}
            return post
        cal = {f.fold: (method.members(f.calibration.logits, seed + f.fold + CAL_SEED),
                        np.asarray(f.calibration.y).astype(int)) for f in folds}
        post.temperature, post.temperature_record = fit_temperature(cal, config.calibrate)
        oof: dict[str, list] = {"fold": [], "score": [], "pattern": [], "label": []}
        for f in folds:
            z, y = cal[f.fold]
            probs = member_probs(_scaled(z, post.temperature)).mean(axis=0)
            post.conformal[f.fold] = ConformalClassifier(config.alpha, config.conformal_score,
                                                         config.conformal_groupby).fit(probs, y, f.calibration.patterns)
            post.sources[f.fold] = f.calibration_source
            test = member_probs(_scaled(method.members(f.test.logits, seed + f.fold + TEST_SEED), post.temperature))
            labels = np.asarray(f.test.y).astype(int)
            oof["fold"] += [f.fold] * len(labels)
            oof["score"] += post.conformal[f.fold].label_scores(test.mean(axis=0), labels).tolist()
            oof["pattern"] += [str(p) for p in f.test.patterns]
            oof["label"] += labels.tolist()
        post.oof = oof
        return post

    def fold_of(self, keys: Sequence[str]) -> np.ndarray:
        """The fold whose model calibrates each new subject: a hash of (run seed, subject id), so a patient
        gets the same fold whatever cohort it comes in, and the assignment is independent of its data."""
        folds = sorted(self.conformal)
        return np.array([folds[int(hashlib.sha256(f"{self.seed}:{key}".encode()).hexdigest(), 16) % len(folds)]
                         for key in keys])

    def new_subject_conformal(self, fold: int) -> ConformalClassifier:
        """Split conformal for new subjects of ``fold``: calibrated on every subject that fold's model never
        saw — its test split (out-of-fold scores) and its calibration split when it was held out."""
        own = self.conformal[fold]
        held_out = self.sources.get(fold) == "calibration"
        test = np.asarray(self.oof["fold"]) == fold
        groups = {"pattern": self.oof["pattern"], "class": self.oof["label"]}.get(self.config.conformal_groupby)
        state = own.state()
        state["scores"] = [*(state["scores"] if held_out else []), *np.asarray(self.oof["score"])[test].tolist()]
        if groups is not None:
            state["groups"] = [*(state["groups"] if held_out else []), *np.asarray(groups, dtype=object)[test].tolist()]
        return ConformalClassifier.from_state({**state, "randomized": False})

    # -- applying ------------------------------------------------------------------------------------

    def _columns(self, members: np.ndarray, uncalibrated: np.ndarray, sets: np.ndarray | None) -> pd.DataFrame:
        """The columns of ``predictions.csv`` from calibrated member probabilities ``(K, n, C)``."""
        summary = summarize_members(members)
        n = members.shape[1]
        frame = pd.DataFrame(index=range(n))
        if members.shape[-1] > 2:
            for c in range(members.shape[-1]):
                frame[f"p_{c}"] = summary["p"][:, c]
            top = summary["p"].argmax(axis=1)
            frame["y_pred"] = top
            for key in ("p", "p_low", "p_high"):
                summary[key] = summary[key][np.arange(n), top]
        for key in ("p", "p_low", "p_high", "entropy", "aleatoric", "epistemic"):
            frame[key] = summary[key]
        if members.shape[-1] == 2:
            frame["p_uncal"] = uncalibrated.mean(axis=0)[:, 1]
        if sets is not None:
            frame["conformal_set"] = format_sets(sets)
            frame["abstain"] = sets.sum(axis=1) != 1
        return frame

    def out_of_fold(self, fold: int, logits: np.ndarray, patterns: list[str], method: UncertaintyMethod,
                    seed_offset: int = TEST_SEED) -> pd.DataFrame:
        """Columns for subjects held out of ``fold``'s training, from that fold's model (split conformal)."""
        z = method.members(logits, self.seed + fold + seed_offset)
        members = member_probs(_scaled(z, self.temperature))
        sets = self.conformal[fold].predict(members.mean(axis=0), patterns) if fold in self.conformal else None
        return self._columns(members, member_probs(z), sets)

    def new_subjects(self, fold_logits: dict[int, np.ndarray], patterns: list[str],
                     method: UncertaintyMethod, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Columns for subjects no fold trained on: every fold model's members pooled for ``p`` and the
        uncertainty columns; the set from the fold :meth:`fold_of` assigns to each subject id in ``keys``
        (default: the row numbers)."""
        z = {k: method.members(v, self.seed + k + TEST_SEED) for k, v in fold_logits.items()}
        calibrated = {k: member_probs(_scaled(v, self.temperature)) for k, v in z.items()}
        members = np.concatenate(list(calibrated.values()))
        sets = None
        if self.oof.get("score"):
            keys = [str(i) for i in range(members.shape[1])] if keys is None else [str(k) for k in keys]
            assigned = self.fold_of(keys)
            sets = np.zeros(members.shape[1:], dtype=bool)
            for k in np.unique(assigned):
                rows = np.flatnonzero(assigned == k)
                sets[rows] = self.new_subject_conformal(int(k)).predict(calibrated[int(k)].mean(axis=0)[rows],
                                                                        [patterns[i] for i in rows])
        return self._columns(members, np.concatenate([member_probs(v) for v in z.values()]), sets)

    def apply(self, fold_logits: dict[int, np.ndarray], patterns: list[str], method: UncertaintyMethod,
              fold: int | None = None, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """:meth:`out_of_fold` for subjects held out of ``fold``, else :meth:`new_subjects` (``fold=None``;
        ``keys``: their subject ids)."""
        if fold is None:
            return self.new_subjects(fold_logits, patterns, method, keys)
        return self.out_of_fold(fold, fold_logits[fold], patterns, method)

    # -- metrics and persistence ---------------------------------------------------------------------

    def record(self) -> dict[str, Any]:
        """The ``uncertainty`` entry of ``metrics.json``: what was fitted, per fold."""
        return {"method": self.config.method, "calibrated": self.temperature != 1.0,
                "temperature": self.temperature, "temperature_fit": self.temperature_record,
                "conformal_score": self.config.conformal_score, "conformal_groupby": self.config.conformal_groupby,
                "new_subjects": "split conformal of one fold per subject (hash of its id), calibrated on the fold's "
                                "test and calibration splits: 1 - alpha <= coverage <= 1 - alpha + 1/(n_k + 1)",
                "folds": {str(k): {"calibration_source": self.sources.get(k), "groups": c.quantile_table()}
                          for k, c in self.conformal.items()}}

    def to_json(self) -> dict[str, Any]:
        return {"layout": LAYOUT, "task_kind": self.task_kind, "config": self.config.model_dump(mode="json"),
                "seed": self.seed, "temperature": self.temperature, "temperature_record": self.temperature_record,
                "conformal": {str(k): c.state() for k, c in self.conformal.items()},
                "sources": {str(k): v for k, v in self.sources.items()}, "oof": self.oof}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Posthoc:
        if data.get("layout") != LAYOUT:
            raise ValueError(f"posthoc.json layout {data.get('layout')!r}, this fusemed reads {LAYOUT}")
        return cls(data["task_kind"], UncertaintyConfig.model_validate(data["config"]), float(data["temperature"]),
                   data["temperature_record"],
                   {int(k): ConformalClassifier.from_state(v) for k, v in data["conformal"].items()},
                   {int(k): v for k, v in data["sources"].items()}, data["oof"], int(data["seed"]))
