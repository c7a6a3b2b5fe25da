"""The uncertainty part of a run's config: which method, and what is fitted after training.

Checked when the config is parsed, before any cohort file is read: an unknown method gets "did you mean".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fusemed.uncertainty.methods import METHODS, UncertaintyMethod


class UncertaintyConfig(BaseModel):
    """How sure a run says it is: epistemic method, calibration, conformal sets."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field("none", description="none | mc_dropout | ensemble | evidential (fusemed.uncertainty.METHODS)")
    calibrate: bool = Field(False, description="temperature scaling (pooled over the folds' calibration splits, "
                                               "kept only if it lowers cross-fitted held-out NLL and ECE)")
    alpha: float = Field(0.1, gt=0, lt=1, description="conformal miscoverage: sets cover with prob >= 1-alpha")
    mc_samples: int = Field(20, ge=2, description="MC-dropout passes per subject (method mc_dropout)")
    ensemble_size: int = Field(5, ge=2, description="networks per fold (method ensemble)")
    conformal_score: Literal["lac", "aps"] = "lac"
    conformal_groupby: Literal["none", "class", "pattern"] = Field(
        "pattern", description="conformal calibration groups: marginal, per class, per missing pattern")
    calibration_split: Literal["held_out", "validation"] = Field(
        "held_out", description="held_out: each fold's calibration split (data.calibration_fraction); "
                                "validation: the early-stopping split (optimistic; only on explicit request)")

    @field_validator("method")
    @classmethod
    def _known(cls, value: str) -> str:
        from fusemed.choices import look_up

        return look_up(value, list(METHODS))

    @property
    def posthoc(self) -> bool:
        """True when anything is fitted after training (calibration, conformal sets, member summaries)."""
        return METHODS[self.method].needs_network or self.calibrate

    def build(self) -> UncertaintyMethod:
        """The registered method object."""
        return METHODS[self.method](self)
