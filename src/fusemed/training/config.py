"""What a training run is asked to do: one pydantic record, loadable from YAML, overridable by flags.

The resolved record is written to ``RUN/config.yaml`` so a run folder describes itself and rerunning
the same command resumes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fusemed.configure.space import SearchSpace
from fusemed.io import load_yaml
from fusemed.training.io import atomic_write_text


class TrainConfig(BaseModel):
    """Everything that decides a run's result (and a few knobs that only decide its speed)."""

    model_config = ConfigDict(extra="forbid")

    cohort: Path = Field(description="cohort folder (cohort.yaml + manifest)")
    target: str = Field(description="target name declared in cohort.yaml (binary, multiclass or survival)")
    fusion: str = Field("auto", description="auto (self-configure: choose among `search` by inner CV), a "
                        "fusion strategy (fusemed.models.FUSIONS) or a classical baseline (fusemed.models.BASELINES)")
    search: SearchSpace = Field(default_factory=SearchSpace, description="what fusion=auto chooses among")
    modalities: list[str] | None = Field(None, description="modalities to use (default: all declared)")
    folds: int = Field(5, ge=2, description="outer cross-validation folds (subject level)")
    epochs: int = Field(20, ge=1)
    seed: int = 0
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(5, ge=1, description="early stopping patience in epochs (inner validation loss)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of each training fold held out for early stopping")
    calibration_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of each training fold held out for post-hoc calibration (0: none)")
    spacing: float = Field(3.0, gt=0, description="isotropic voxel size (mm) of the common volume grid")
    grid: Literal["training", "mni152"] = Field(
        "training", description="common grid: bounding box of the training volumes, or the MNI152 box")
    max_grid: int = Field(96, ge=4, description="largest grid side in voxels (the box is cropped about its centre)")
    moddrop: float = Field(0.0, ge=0, lt=1, description="modality dropout probability during training")
    model: dict[str, Any] = Field(default_factory=dict, description="extra fusemed.models.ModelConfig fields")
    uncertainty: str = Field("none", description="none | mc_dropout | ensemble | evidential (issue 5)")
    calibrate: bool = Field(False, description="temperature scaling fitted on each fold's calibration split")
    alpha: float = Field(0.1, gt=0, lt=1, description="conformal miscoverage: sets cover with prob >= 1-alpha")
    mc_samples: int = Field(0, ge=0, description="MC-dropout passes at prediction (0: one deterministic pass; "
                            "uncertainty=mc_dropout makes it 20)")
    ensemble_size: int = Field(1, ge=1, description="models per fold, trained with different seeds "
                               "(uncertainty=ensemble makes it 5)")
    conformal_score: Literal["lac", "aps"] = "lac"
    conformal_groupby: Literal["none", "class", "pattern"] = Field(
        "pattern", description="conformal calibration groups: marginal, per class, per missing pattern")
    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_workers: int = Field(0, ge=0)
    deterministic: bool = True
    progress: bool = True
    cache: bool = Field(True, description="keep preprocessed tensors in memory between epochs")

    pinned: list[str] | None = Field(
        None, description="keys the user set explicitly (self-configuration leaves them alone); filled in when "
                          "the config is first made and saved with the run")

    @field_validator("fusion")
    @classmethod
    def _known_model(cls, value: str) -> str:
        """A misspelt fusion or baseline fails here, before any cohort file is read."""
        from monai.utils import look_up_option

        from fusemed.configure.space import candidate_names

        return look_up_option(value, ["auto", *candidate_names()])

    @model_validator(mode="after")
    def _pin_what_was_given(self) -> TrainConfig:
        if self.pinned is None:
            self.pinned = sorted(self.model_fields_set - {"cohort", "target", "pinned", "progress"})
        return self

    @model_validator(mode="after")
    def _baselines_have_no_members(self) -> TrainConfig:
        from fusemed.configure.space import is_baseline

        if is_baseline(self.fusion) and (self.uncertainty in ("mc_dropout", "evidential", "ensemble")
                                         or self.ensemble_size > 1 or self.mc_samples):
            raise ValueError(f"fusion={self.fusion!r} is a classical baseline: uncertainty={self.uncertainty!r} "
                             "needs a network (use a fusion, or auto, or uncertainty none with --calibrate)")
        return self

    @field_validator("uncertainty")
    @classmethod
    def _known_uncertainty(cls, value: str, info: ValidationInfo) -> str:
        """Fail before training, not after it, on a misspelt method ("did you mean ..."); a saved run's
        config is trusted (its step may have been registered by code that is not loaded now)."""
        from monai.utils import look_up_option

        from fusemed.training.hooks import UNCERTAINTY_STEPS

        if (info.context or {}).get("saved_run"):
            return value
        return look_up_option(value, ("none", "mc_dropout", "ensemble", "evidential", *UNCERTAINTY_STEPS))

    @model_validator(mode="after")
    def _members_for_the_method(self) -> TrainConfig:
        """mc_dropout and ensemble need several predictions per subject: give them sensible defaults."""
        if self.uncertainty == "mc_dropout" and self.mc_samples == 0:
            self.mc_samples = 20
        if self.uncertainty == "ensemble" and self.ensemble_size == 1:
            self.ensemble_size = 5
        return self

    @field_validator("modalities", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a YAML config; keyword overrides (CLI flags that were given) win over the file."""
        path = Path(path)
        raw = load_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of TrainConfig keys, found {type(raw).__name__}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        if "cohort" in raw and not Path(raw["cohort"]).is_absolute() and "cohort" not in overrides:
            raw["cohort"] = str((path.parent / raw["cohort"]).resolve())
        return cls.model_validate(raw)

    def to_yaml(self, path: str | Path) -> Path:
        """Write the resolved config atomically (paths as strings)."""
        data = self.model_dump(mode="json")
        return atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))

    @classmethod
    def load_run(cls, run: str | Path) -> TrainConfig:
        """The config a run folder was trained with."""
        return cls.model_validate(load_yaml(Path(run) / "config.yaml"),
                                  context={"saved_run": True})
