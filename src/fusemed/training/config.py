"""What a training run is asked to do: one pydantic record of sub-records, loadable from YAML, overridable.

``TrainConfig`` = ``cohort``, ``target``, ``seed`` and four sub-records: ``data`` (which subjects and how they
are split and resampled), ``model`` (fusion or baseline, its search space and network options),
``uncertainty`` (:class:`fusemed.uncertainty.UncertaintyConfig`) and ``trainer`` (optimisation and the
Lightning device settings). Every name is checked when the record is parsed, before any cohort file is
read; a misspelt key or value gets "did you mean".

A key may be given flat (``fusion: late``, ``lr: 0.01``, the CLI flags) or nested (``model: {fusion:
late}``); each leaf name belongs to exactly one sub-record. The resolved record is written to
``RUN/config.yaml`` (nested) so a run folder describes itself and rerunning the same command resumes it;
read it back with ``fusemed.run.Run.open(RUN).config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fusemed.configure.space import SearchSpace
from fusemed.io import load_yaml
from fusemed.training.io import atomic_write_text
from fusemed.uncertainty.config import UncertaintyConfig
from fusemed.uncertainty.methods import METHODS


class DataConfig(BaseModel):
    """Which modalities, how subjects are split into folds, how volumes are resampled."""

    model_config = ConfigDict(extra="forbid")

    modalities: list[str] | None = Field(None, description="modalities to use (default: all declared)")
    folds: int = Field(5, ge=2, description="outer cross-validation folds (subject level)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of each training fold held out for early stopping")
    calibration_fraction: float | None = Field(
        None, ge=0, lt=1, description="share of each training fold held out for post-hoc calibration and conformal "
                                      "sets (default: 0.2 when the run fits anything post hoc, else 0)")
    spacing: float = Field(3.0, gt=0, description="isotropic voxel size (mm) of the common volume grid")
    grid: Literal["training", "mni152"] = Field(
        "training", description="common grid: bounding box of the training volumes, or the MNI152 box")
    max_grid: int = Field(96, ge=4, description="largest grid side in voxels (the box is cropped about its centre)")
    cache: bool = Field(True, description="keep preprocessed tensors in memory between epochs")

    @field_validator("modalities", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


class ModelSection(BaseModel):
    """The model a fold fits: a fusion, a classical baseline or ``auto``; other keys are ModelConfig's."""

    model_config = ConfigDict(extra="allow")

    fusion: str = Field("auto", description="auto (self-configure: choose among `search` by inner CV), a "
                        "fusion strategy (fusemed.models.FUSIONS) or a classical baseline (fusemed.models.BASELINES)")
    search: SearchSpace = Field(default_factory=SearchSpace, description="what fusion=auto chooses among")
    moddrop: float = Field(0.0, ge=0, lt=1, description="modality dropout probability during training")

    @field_validator("fusion")
    @classmethod
    def _known_model(cls, value: str) -> str:
        """A misspelt fusion or baseline fails here, before any cohort file is read."""
        from fusemed.choices import look_up
        from fusemed.configure.space import candidate_names

        return look_up(value, ["auto", *candidate_names()])

    @model_validator(mode="after")
    def _network_options(self) -> ModelSection:
        """Extra keys are fusemed.models.ModelConfig fields: names and values checked now, not at training."""
        from fusemed.choices import look_up
        from fusemed.models import ModelConfig

        extra = dict(self.model_extra or {})
        allowed = [k for k in ModelConfig.model_fields if k != "fusion"]
        for key in extra:
            look_up(key, allowed)
        ModelConfig(**extra)
        return self

    @property
    def options(self) -> dict[str, Any]:
        """The ModelConfig keys given (network width, encoders, dropout, ...)."""
        return dict(self.model_extra or {})


class DeviceConfig(BaseModel):
    """Where and how the Lightning trainer runs (shared by prognosis and lesion detection).

    ``precision: auto`` is mixed precision (``16-mixed``) on a GPU and full precision elsewhere.
    """

    model_config = ConfigDict(extra="forbid")

    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu, ...")
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = Field("auto", description="Lightning precision; auto: 16-mixed on a GPU, else 32-true")
    num_workers: int = Field(0, ge=0)
    deterministic: bool = True
    progress: bool = True


class TrainerConfig(DeviceConfig):
    """Optimisation and the Lightning trainer's device settings."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(5, ge=1, description="early stopping patience in epochs (inner validation loss)")
    precision: str = "32-true"  # prognosis runs saved before ``auto`` existed resume unchanged


SECTIONS: dict[str, type[BaseModel]] = {"data": DataConfig, "model": ModelSection,
                                         "uncertainty": UncertaintyConfig, "trainer": TrainerConfig}
TOP_LEVEL = ("cohort", "target", "seed", "pinned")
#: flat aliases whose name differs from the leaf they set
ALIASES = {"uncertainty": ("uncertainty", "method")}


def leaf_owners() -> dict[str, str]:
    """Every flat key a config accepts -> the sub-record that holds it (ModelConfig keys go to ``model``)."""
    from fusemed.models import ModelConfig

    owners = {leaf: name for name, cls in SECTIONS.items() for leaf in cls.model_fields}
    owners.update({k: "model" for k in ModelConfig.model_fields if k not in owners})
    return owners


def route(raw: dict[str, Any]) -> dict[str, Any]:
    """Flat and nested keys -> nested sub-records; an unknown key gets "did you mean"."""
    from fusemed.choices import look_up

    owners = leaf_owners()
    out: dict[str, Any] = {k: raw[k] for k in TOP_LEVEL if k in raw}
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in raw.items():
        if key in TOP_LEVEL:
            continue
        if key in SECTIONS and isinstance(value, dict):
            sections[key].update(value)
        elif key in ALIASES:
            section, leaf = ALIASES[key]
            sections[section][leaf] = value.get(leaf) if isinstance(value, dict) else value
        elif key in SECTIONS and isinstance(value, BaseModel):
            sections[key].update(value.model_dump(exclude_unset=True))
        else:
            sections[owners[look_up(key, [*owners, *TOP_LEVEL, *SECTIONS])]][key] = value
    out.update({name: values for name, values in sections.items() if values})
    return out


def given_leaves(raw: dict[str, Any]) -> list[str]:
    """The leaf names a raw (flat or nested) mapping sets: what the user pinned."""
    leaves = []
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            leaves.extend(value)
        elif key in ALIASES:
            leaves.append(ALIASES[key][1])
        elif key not in TOP_LEVEL:
            leaves.append(key)
    return sorted(set(leaves) - {"progress"})


class TrainConfig(BaseModel):
    """Everything that decides a run's result (and a few knobs that only decide its speed)."""

    model_config = ConfigDict(extra="forbid")

    cohort: Path = Field(description="cohort folder (cohort.yaml + manifest)")
    target: str = Field(description="target name declared in cohort.yaml (binary, multiclass or survival)")
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelSection = Field(default_factory=ModelSection)
    uncertainty: UncertaintyConfig = Field(default_factory=UncertaintyConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    pinned: list[str] | None = Field(
        None, description="leaf keys the user set explicitly (self-configuration leaves them alone); filled in "
                          "when the config is first made and saved with the run")

    @model_validator(mode="before")
    @classmethod
    def _route(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        routed = route(raw)
        if routed.get("pinned") is None:
            routed["pinned"] = given_leaves(raw)
        return routed

    @model_validator(mode="after")
    def _post_hoc_split(self, info: ValidationInfo) -> TrainConfig:
        """Post-hoc fitting gets its own held-out split by default; the early-stopping split only on request."""
        if self.data.calibration_fraction is None:
            self.data.calibration_fraction = 0.2 if self.uncertainty.posthoc else 0.0
        if (self.uncertainty.posthoc and self.data.calibration_fraction == 0
                and self.uncertainty.calibration_split == "held_out" and not (info.context or {}).get("saved_run")):
            raise ValueError("calibration_fraction=0 leaves no held-out split for calibration and conformal sets: "
                             "set calibration_fraction > 0 (default 0.2), or calibration_split: validation to use "
                             "the early-stopping split (optimistic; recorded in metrics.json)")
        return self

    @model_validator(mode="after")
    def _baselines_have_no_members(self) -> TrainConfig:
        from fusemed.configure.space import is_baseline

        if is_baseline(self.model.fusion) and METHODS[self.uncertainty.method].needs_network:
            raise ValueError(f"fusion={self.model.fusion!r} is a classical baseline: uncertainty="
                             f"{self.uncertainty.method!r} needs a network (use a fusion, or auto, or uncertainty "
                             "none with --calibrate)")
        return self

    @property
    def fusion(self) -> str:
        return self.model.fusion

    def updated(self, **flat: Any) -> TrainConfig:
        """A copy with flat (or nested) keys replaced; ``model`` dicts merge into the model's options."""
        raw = self.model_dump(mode="json")
        for section, values in route(flat).items():
            if section in SECTIONS:
                raw[section] = {**raw.get(section, {}), **values}
            else:
                raw[section] = values
        return TrainConfig.model_validate(raw, context={"saved_run": True})

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
