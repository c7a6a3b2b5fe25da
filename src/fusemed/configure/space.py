"""The declared search space of self-configuration: which candidates compete, and how they are compared.

Checked when the config is parsed (before any cohort file is read): every candidate is a registered
classical baseline or fusion strategy, and a typo gets "did you mean ...? Available: ...".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: candidates when the space does not name them, by task kind: baselines first (on a tie the simpler wins)
DEFAULT_CANDIDATES = {
    "binary": ["logistic", "gbm", "late", "concat"],
    "multiclass": ["logistic", "gbm", "late", "concat"],
    "survival": ["cox", "rsf", "late", "concat"],
}


#: above this many classical features, the tree ensembles (``gbm``, ``rsf``) are not default candidates
TREES = ("gbm", "rsf")
TREES_MAX_FEATURES = 5000


def candidate_names() -> list[str]:
    """Every name a candidate may take: registered baselines, then fusion strategies."""
    from fusemed.models.registry import BASELINES, FUSIONS  # declared names: no torch import to check a name

    return [*BASELINES, *FUSIONS]


def is_baseline(name: str) -> bool:
    from fusemed.models.registry import BASELINES

    return name in BASELINES


class SearchSpace(BaseModel):
    """What ``fusion: auto`` chooses among, by inner cross-validation on each outer training fold."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[str] | None = Field(
        None, description="baselines and fusions to compare (default: by task, see DEFAULT_CANDIDATES)")
    inner_folds: int | None = Field(
        None, ge=2, le=10, description="inner CV folds (default: 3 below 150 subjects, else 2)")
    prune: bool = Field(True, description="stop a network after an inner fold where it is below the median "
                                          "of the candidates tried so far (Optuna MedianPruner); classical "
                                          "baselines, cheap to fit, always run every inner fold")
    blend: bool = Field(True, description="also try the average of the 2 and 3 best candidates (classification: "
                                          "equal-weight probabilities; survival: log-risks scaled by their inner "
                                          "spread); chosen only if its inner score is higher")
    metric: Literal["auto", "auroc", "balanced_accuracy", "neg_log_loss", "c_index"] = Field(
        "auto", description="inner-CV score (auto: AUROC binary, balanced accuracy multiclass, C-index survival)")

    @field_validator("candidates")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        from fusemed.choices import look_up

        names = candidate_names()
        if not value:
            raise ValueError(f"search.candidates is empty; choose among {names}")
        return list(dict.fromkeys(look_up(v, names) for v in value))

    def resolve(self, task_kind: str, n: int, n_features: int = 0) -> tuple[list[str], int]:
        """``(candidates fit for the task, inner folds)`` for a fold of ``n`` subjects whose classical feature
        vector has ``n_features`` entries. By default the tree ensembles are left out above
        ``TREES_MAX_FEATURES`` (a 332-region connectome has 54,946 edges: boosting then costs minutes a fit
        and cannot beat a penalised linear model at tens of subjects); a space that names one keeps it."""
        from fusemed.models.baselines import BASELINES

        names = self.candidates or [c for c in DEFAULT_CANDIDATES[task_kind]
                                    if c not in TREES or n_features <= TREES_MAX_FEATURES]
        usable = [c for c in names if c not in BASELINES or task_kind in BASELINES[c].tasks]
        if not usable:
            raise ValueError(f"no candidate in {names} predicts a {task_kind} target")
        return usable, self.inner_folds or (3 if n < 150 else 2)
