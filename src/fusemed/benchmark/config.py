"""A benchmark is data: a YAML grid of cohorts × fusion strategies × uncertainty methods × seeds.

Example (``benchmarks/coma.yaml``)::

    name: coma
    cohorts:
      - {scenario: coma, subjects: 200, missing: [0.0, 0.3, 0.6], scheme: mcar, spacing: 4.0}
      - {dataset: mice, missing: [0.0], seed: 0}      # a fusemed.datasets loader (real or independent)
    fusions: [early, late, attention, hemis]
    uncertainty: [ensemble]
    seeds: [0]
    train: {target: outcome, folds: 5, epochs: 20, calibrate: true, alpha: 0.1}
    variants: {marginal: {conformal_groupby: none}, pattern: {conformal_groupby: pattern}}   # optional axis
    n_jobs: 2
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fusemed.io import load_yaml


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


#: keys that only the simulator reads: an error next to ``dataset:`` (they would be silently ignored)
_SIMULATOR_KEYS = ("scenario", "scheme", "spacing", "sites")


class TransferSpec(BaseModel):
    """New patients: a second cohort from the same generator (another seed) that every trained cell then
    predicts with ``fusemed evaluate`` — what cross-validation promises, checked on subjects no fold saw."""

    model_config = ConfigDict(extra="forbid")

    subjects: int = Field(400, ge=20)
    seed: int = Field(1, ge=0, description="simulator seed of the new cohort (differs from the training one)")
    sites: Literal["same", "new"] = Field(
        "same", description="same: new patients scanned at the training cohort's sites (what cross-validation "
                            "promises); new: new scanner parameters at every site too (a shift)")

    @property
    def name(self) -> str:
        return f"n{self.subjects}-s{self.seed}-{self.sites}-sites"


class AdviseSpec(BaseModel):
    """Validate ``fusemed advise``: the cohort is simulated complete, modalities are hidden as a cohort simulated
    with ``hide`` missing under each ``scheme`` would lack them (:func:`fusemed.simulate.hide.hide_modalities`);
    each cell trains on a hidden copy, advises on its incomplete subjects, then every hidden modality is
    revealed and the realised change measured (:mod:`fusemed.benchmark.advise`)."""

    model_config = ConfigDict(extra="forbid")

    hide: float = Field(0.3, gt=0, le=0.9, description="per-modality rate at which modalities are hidden")
    schemes: list[str] = Field(default_factory=lambda: ["mcar"], description="mcar and/or mnar (one copy each)")
    donors: int = Field(32, ge=2, description="donors per (patient, modality)")
    n_boot: int = Field(200, ge=10, description="bootstrap resamples of the donors per advice row")
    fixed: str = Field("pet", description="the fixed policy advise is compared with: always order this modality")

    _schemes = field_validator("schemes", mode="before")(classmethod(lambda cls, v: _as_list(v)))

    @field_validator("schemes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from fusemed.choices import look_up

        return [look_up(v, ["mcar", "mnar"]) for v in value]


class CohortGrid(BaseModel):
    """Cohorts, one per missing rate: simulated (``fusemed.simulate.simulate_cohort``), laid out by a
    ``fusemed.datasets`` loader (``dataset:``), or an existing folder (``path:``)."""

    model_config = ConfigDict(extra="forbid")

    scenario: str = "coma"
    subjects: int = Field(200, ge=4)
    seed: int = Field(0, ge=0)
    missing: list[float] = Field(default_factory=lambda: [0.0], description="per-modality missing rates")
    scheme: str = Field("mcar", description="missingness scheme: mcar, mnar or site")
    spacing: float | None = Field(None, description="voxel size in mm (simulator default when empty)")
    sites: int = Field(3, ge=1)
    path: Path | None = Field(None, description="an existing cohort folder instead of a simulated one")
    dataset: str | None = Field(None, description="a fusemed.datasets loader (mice, whas500, …) instead")
    target: str | None = Field(None, description="the target these cohorts are trained on (default: train.target)")
    baselines: list[str] | None = Field(None, description="classical baselines for these cohorts (default: the "
                                                          "grid's)")
    transfer: list[TransferSpec] = Field(default_factory=list,
                                         description="also predict new simulated cohorts (simulator only)")
    site_seed: int | None = Field(None, description="seed of the simulated sites (default: seed)")

    _transfer = field_validator("transfer", mode="before")(classmethod(lambda cls, v: [] if v is None else _as_list(v)))
    advise: AdviseSpec | None = Field(None, description="train on copies with modalities hidden, advise, reveal "
                                                        "(simulator only, missing: [0.0])")

    _missing = field_validator("missing", mode="before")(classmethod(lambda cls, v: _as_list(v)))

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from fusemed.datasets import DATASETS

        DATASETS[value]  # raises "unknown dataset …, did you mean …"
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CohortGrid:
        if self.advise is not None and (self.dataset is not None or self.path is not None or self.missing != [0.0]):
            raise ValueError("`advise:` hides modalities of a complete simulated cohort: no dataset or path, "
                             "missing: [0.0]")
        if self.dataset is None:
            return self
        from fusemed.datasets import takes_subjects

        if self.path is not None:
            raise ValueError("give either `dataset:` or `path:`, not both")
        if self.transfer:
            raise ValueError("`transfer:` draws new subjects from the simulator; a dataset has no generator")
        ignored = [k for k in _SIMULATOR_KEYS if k in self.model_fields_set]
        if "subjects" in self.model_fields_set and not takes_subjects(self.dataset):
            ignored.append("subjects")
        if ignored:
            raise ValueError(f"dataset {self.dataset!r} does not use {', '.join(ignored)}")
        return self

    def cohort_ids(self) -> list[tuple[str, float]]:
        """``(folder name, missing rate)`` of each cohort this entry expands to."""
        if self.path is not None:
            return [(Path(self.path).name, float("nan"))]
        if self.dataset is not None:
            from fusemed.datasets import takes_subjects

            size = f"-n{self.subjects}" if takes_subjects(self.dataset) else ""
            return [(f"{self.dataset}{size}-miss{int(round(100 * m)):02d}-s{self.seed}", m) for m in self.missing]
        return [(f"{self.scenario}-n{self.subjects}-{self.scheme}{int(round(100 * m)):02d}-s{self.seed}", m)
                for m in self.missing]


class BenchmarkConfig(BaseModel):
    """The whole grid; ``train`` holds any ``fusemed.training.TrainConfig`` keys shared by every cell."""

    model_config = ConfigDict(extra="forbid")

    name: str = "benchmark"
    task: Literal["prognosis", "detection"] = "prognosis"
    cohorts: list[CohortGrid]
    fusions: list[str] = Field(default_factory=lambda: ["early", "late", "attention"],
                               description="fusion strategies (prognosis) or detector names (detection)")
    baselines: list[str] = Field(
        default_factory=lambda: ["logistic", "gbm", "cox", "rsf"],
        description="classical baselines run beside the fusions (prognosis; one cell per seed, a baseline that "
                    "cannot predict the target's kind is skipped); [] for none")
    uncertainty: list[str] = Field(default_factory=lambda: ["none"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    train: dict[str, Any] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="named sets of training keys laid over `train`, one more axis of the grid (e.g. "
                    "{marginal: {conformal_groupby: none}, pattern: {conformal_groupby: pattern}}); a run folder "
                    "is <fusion>-<uncertainty>-<variant>-s<seed>; baselines are trained once, without variants")
    n_jobs: int = Field(1, ge=1, description="cells trained at once (processes)")
    threads_per_job: int = Field(1, ge=1, description="torch threads inside each cell")
    n_boot: int = Field(2000, ge=100, description="bootstrap resamples for AUROC CIs")

    _lists = field_validator("fusions", "baselines", "uncertainty", "seeds", mode="before")(
        classmethod(lambda cls, v: _as_list(v)))

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, value: list[str]) -> list[str]:
        from fusemed.choices import look_up
        from fusemed.models.baselines import BASELINES

        return [look_up(v, list(BASELINES)) for v in value]

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        bad = [k for k in value if not k.replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"variant names are letters, digits and _ (they name run folders): {', '.join(bad)}")
        return value

    @classmethod
    def from_yaml(cls, path: str | Path) -> BenchmarkConfig:
        path = Path(path)
        raw = load_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of benchmark keys, found {type(raw).__name__}")
        for entry in raw.get("cohorts") or []:
            if isinstance(entry, dict) and entry.get("path") and not Path(entry["path"]).is_absolute():
                entry["path"] = str((path.parent / entry["path"]).resolve())
        return cls.model_validate(raw)
