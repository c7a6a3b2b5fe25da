"""What a detection run is asked to do: one pydantic record, loadable from YAML, overridable by flags.

The resolved record is written to ``RUN/config.yaml``, so a run folder describes itself and its
config file can be handed back to `fusemed train --config` to redo the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from fusemed.io import atomic_write_text, load_yaml
from fusemed.training.config import DeviceConfig


class DetectionConfig(BaseModel):
    """Everything that decides a detection run's result (keys of `train_detector`)."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["detection"] = "detection"
    cohort: Path = Field(description="cohort folder (cohort.yaml + manifest)")
    target: str = Field("lesion", description="voxel or vertex mask target declared in cohort.yaml")
    model: str = Field("hemis-unet", description="detector, a name in fusemed.diagnosis.DETECTORS")
    modalities: list[str] | None = Field(None, description="modalities read (default: the detector's own)")
    spacing: float = Field(2.0, gt=0, description="isotropic voxel size (mm) of the common volume grid")
    registration: Literal["affine", "none"] = Field(
        "affine", description="affine registration of each subject to MNI152, or none (inputs already share one space)")
    test_fraction: float = Field(0.3, ge=0, lt=1, description="share of subjects held out for evaluation")
    calibration_fraction: float = Field(
        0.25, ge=0, lt=1, description="share of the rest held out to calibrate the threshold and cluster confidence")
    calibration: Literal["isotonic", "platt"] = "isotonic"
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict, description="detector hyperparameters (its `defaults`)")
    trainer: DeviceConfig = Field(default_factory=DeviceConfig, description=(
        "where the detector's network trains (accelerator, devices, strategy, precision: the prognosis keys)"))

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> DetectionConfig:
        """Read a YAML config; keyword overrides (CLI flags that were given) win over the file, and
        `params` and `trainer` overrides are merged into the file's own."""
        path = Path(path)
        raw = load_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of DetectionConfig keys, found {type(raw).__name__}")
        merged = {key: {**(raw.get(key) or {}), **(overrides.pop(key, None) or {})} for key in ("params", "trainer")}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        raw.update(merged)
        if "cohort" in raw and not Path(raw["cohort"]).is_absolute() and "cohort" not in overrides:
            raw["cohort"] = str((path.parent / raw["cohort"]).resolve())
        return cls.model_validate(raw)

    def to_yaml(self, path: str | Path) -> Path:
        """Write the resolved config atomically."""
        return atomic_write_text(Path(path), yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))
