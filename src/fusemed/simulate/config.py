"""The simulator's parameters, validated once (pydantic) so every later step can trust them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fusemed.choices import did_you_mean

SCENARIOS = ("epilepsy", "coma")
MISSING_SCHEMES = ("mcar", "mnar", "site")
#: Default voxel size (mm) per scenario: coma cohorts are big, dysplasias are small.
DEFAULT_SPACING = {"coma": 3.0, "epilepsy": 2.0}


def _lookup(value: str, options: tuple[str, ...], what: str) -> str:
    """Case-insensitive choice with "did you mean" (fusemed.choices: no MONAI import to check a word)."""
    key = str(value).strip().lower()
    if key in options:
        return key
    raise ValueError(f"{what}: unknown option {value!r}.{did_you_mean(key, options)} Available: {', '.join(options)}.")


class SimulationConfig(BaseModel):
    """Everything that defines a simulated cohort; same config -> byte-identical files.

    Examples:
        >>> SimulationConfig(scenario="coma", n_subjects=10, seed=1).spacing
        3.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str
    n_subjects: int = Field(ge=1, le=100_000)
    seed: int = Field(default=0, ge=0)
    spacing: float | None = Field(default=None, ge=1.0, le=8.0, description="base voxel size in mm")
    missing: float = Field(default=0.0, ge=0.0, le=0.9, description="per-modality missingness rate")
    missing_scheme: str = "mcar"
    sites: int = Field(default=3, ge=1, le=26)
    site_seed: int | None = Field(
        default=None, ge=0, description="seed of the sites' scanner parameters (default: `seed`); give the "
                                        "training cohort's seed to draw new patients at the same sites")
    patient_fraction: float = Field(default=0.5, gt=0.0, lt=1.0, description="epilepsy: share of patients")
    mri_negative_cnr: float = Field(
        default=1.0, gt=0.0, description="epilepsy: a lesion with T1 and FLAIR CNR below this is MRI-negative"
    )

    @field_validator("scenario")
    @classmethod
    def _scenario(cls, v: str) -> str:
        return _lookup(v, SCENARIOS, "scenario")

    @field_validator("missing_scheme")
    @classmethod
    def _scheme(cls, v: str) -> str:
        return _lookup(v, MISSING_SCHEMES, "missing_scheme")

    @model_validator(mode="after")
    def _default_spacing(self) -> SimulationConfig:
        if self.spacing is None:
            object.__setattr__(self, "spacing", DEFAULT_SPACING[self.scenario])
        return self
