"""The small YAML that tells ``fusemed import bids`` which BIDS files make which modality.

Validated by pydantic before any file of the dataset is read: unknown keys are errors answered with
"did you mean …", and every problem is reported at once (as :class:`~fusemed.cohort.CohortError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fusemed.choices import did_you_mean
from fusemed.cohort.problems import CohortError, Problem
from fusemed.cohort.spec import MESH_VERTICES
from fusemed.io import load_yaml

#: BIDS entities a file selector may fix (pybids names); an absent key matches any value.
ENTITIES = ("suffix", "acquisition", "ceagent", "tracer", "reconstruction", "space", "desc", "run", "atlas", "datatype")
MODALITY_KINDS = ("volume", "graph", "surface", "tabular")
TARGET_KINDS = ("binary", "multiclass", "survival", "mask", "vertex_mask")
#: File extensions a selector accepts, by kind.
EXTENSIONS = {
    "volume": (".nii", ".nii.gz"),
    "mask": (".nii", ".nii.gz"),
    "graph": (".npz", ".tsv", ".csv"),
    "vertex_mask": (".npz", ".gii"),
}
SITE_METADATA = ("InstitutionName", "ManufacturersModelName", "Manufacturer", "StationName", "DeviceSerialNumber")
DEFAULT_SURFACE_PATTERNS = ("surf/{hemi}.{feature}.{mesh}.mgh", "surf/{hemi}.{feature}.mgh", "surf/{hemi}.{feature}")


def _choice(value: Any, options: tuple[str, ...], what: str) -> str:
    if value in options:
        return value
    raise ValueError(f"{what} {value!r} is not one of {', '.join(options)}.{did_you_mean(value, options)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Selector(_Strict):
    """BIDS entities that pick one file per subject (and session). Unset entities match anything."""

    suffix: str | None = None
    acquisition: str | None = None
    ceagent: str | None = None
    tracer: str | None = None
    reconstruction: str | None = None
    space: str | None = None
    desc: str | None = None
    run: str | None = None
    atlas: str | None = None
    datatype: str | None = None
    session: str | None = Field(None, description="`first` or a session label; default: the top-level rule")
    scope: Literal["raw", "derivatives", "all"] | None = Field(
        None, description="raw data, derivatives/, or both (default: raw for volumes, derivatives otherwise)"
    )

    def entities(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ENTITIES if getattr(self, k) is not None}


class ModalityRule(Selector):
    """One modality of the cohort: a BIDS image, a graph, FreeSurfer surface features or table columns."""

    kind: str = "volume"
    # surface (FreeSurfer / MELD-style per-vertex files)
    freesurfer: str | None = Field(None, description="surface: folder of FreeSurfer subjects, relative to BIDS_DIR")
    features: list[str] | None = Field(None, description="surface: feature names, e.g. thickness, curv, sulc")
    patterns: list[str] | None = Field(None, description="surface: file patterns with {hemi} {feature} {mesh}")
    mesh: str | None = Field(None, description="surface: fsaverage3 … fsaverage6 or fsaverage")
    # tabular
    columns: list[str] | None = Field(None, description="tabular: participants.tsv / phenotype columns")
    encode: dict[str, dict[str, float]] | None = Field(None, description="tabular: text value -> number, by column")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> str:
        return _choice(value, MODALITY_KINDS, "kind")

    @field_validator("mesh")
    @classmethod
    def _mesh(cls, value: str | None) -> str | None:
        return None if value is None else _choice(value, tuple(MESH_VERTICES), "mesh")

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> ModalityRule:
        if self.kind == "tabular" and not self.columns:
            raise ValueError("a tabular modality needs `columns: [...]`")
        if self.kind != "tabular" and (self.columns or self.encode):
            raise ValueError(f"`columns` / `encode` are for tabular modalities, not {self.kind}")
        surface_only = [k for k in ("freesurfer", "features", "patterns") if getattr(self, k) is not None]
        if self.kind != "surface" and (surface_only or self.mesh):
            raise ValueError(f"{', '.join(surface_only or ['mesh'])}: surface modalities only, not {self.kind}")
        if self.kind in ("volume", "graph") and not self.suffix:
            raise ValueError(f"a {self.kind} modality needs `suffix:` (e.g. T1w, FLAIR, pet, connectome)")
        return self

    @property
    def scope_or_default(self) -> str:
        return self.scope or ("raw" if self.kind == "volume" else "derivatives")


class TargetRule(Selector):
    """A prediction target: table column(s), or a file picked by entities (masks)."""

    kind: str
    column: str | None = Field(None, description="participants.tsv / phenotype column (default: the target name)")
    time: str | None = None
    event: str | None = None
    classes: list[int] | None = None
    reference: str | None = Field(None, description="mask: the volume modality whose grid it shares")
    mesh: str | None = None
    encode: dict[str, float] | None = Field(None, description="text value -> number (e.g. {good: 0, poor: 1})")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> str:
        return _choice(value, TARGET_KINDS, "kind")

    @field_validator("mesh")
    @classmethod
    def _mesh(cls, value: str | None) -> str | None:
        return None if value is None else _choice(value, tuple(MESH_VERTICES), "mesh")

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> TargetRule:
        if self.kind == "survival" and not (self.time and self.event):
            raise ValueError("a survival target needs `time:` and `event:` columns")
        if self.kind in ("mask", "vertex_mask") and not self.suffix:
            raise ValueError("a mask target needs `suffix:` (e.g. mask) and usually `desc:` (e.g. lesion)")
        return self

    @property
    def is_file(self) -> bool:
        return self.kind in ("mask", "vertex_mask")

    @property
    def scope_or_default(self) -> str:
        return self.scope or "derivatives"


class SiteRule(_Strict):
    """Where the site comes from: a table column, a sidecar field, or a BIDS entity of the first volume."""

    column: str | None = None
    metadata: str | None = Field(None, description=f"sidecar field, e.g. {', '.join(SITE_METADATA)}")
    entity: str | None = Field(None, description="entity of the first volume modality's file, e.g. acquisition")

    @model_validator(mode="after")
    def _one(self) -> SiteRule:
        if sum(v is not None for v in (self.column, self.metadata, self.entity)) != 1:
            raise ValueError("site: give exactly one of `column`, `metadata`, `entity`")
        if self.entity is not None:
            _choice(self.entity, ENTITIES, "site entity")
        return self


class BidsImportConfig(_Strict):
    """``import.yaml``: every key optional; absent sections fall back to the defaults in docs/bids.md."""

    name: str | None = None
    session: str = Field("first", description="`first` (lowest label with data) or a session label")
    site: SiteRule | None = None
    modalities: dict[str, ModalityRule] | None = None
    targets: dict[str, TargetRule] | None = None

    @model_validator(mode="after")
    def _references(self) -> BidsImportConfig:
        volumes = [n for n, m in (self.modalities or {}).items() if m.kind == "volume"]
        for name, t in (self.targets or {}).items():
            if (
                t.kind == "mask"
                and t.reference is not None
                and self.modalities is not None
                and t.reference not in volumes
            ):
                raise ValueError(
                    f"target {name!r}: reference {t.reference!r} is not a volume modality."
                    f"{did_you_mean(t.reference, volumes)} Volumes: {', '.join(volumes) or 'none'}"
                )
        return self


def _loc(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error.get("loc", ()))


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model an error location points into (for the keys an unknown key could have meant)."""
    if len(loc) <= 1:
        return BidsImportConfig
    return {"site": SiteRule, "modalities": ModalityRule, "targets": TargetRule}.get(str(loc[0]), BidsImportConfig)


def load_import_config(path: str | Path | None) -> BidsImportConfig:
    """Read and check ``import.yaml`` (``None``: the defaults); raise CohortError listing every problem."""
    if path is None:
        return BidsImportConfig()
    path = Path(path)
    if not path.is_file():
        raise CohortError([Problem("import config not found", file=path)])
    try:
        raw = load_yaml(path)
    except ValueError as err:  # fusemed.io.YamlError: size, encoding, aliases, syntax (never the file's words)
        raise CohortError([Problem(f"not valid YAML: {err}", file=path)]) from None
    if raw is None:
        return BidsImportConfig()
    if not isinstance(raw, dict):
        raise CohortError([Problem("expected a mapping (name, session, site, modalities, targets)", file=path)])
    try:
        return BidsImportConfig.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            msg = str((e.get("ctx") or {}).get("error", e.get("msg", "invalid"))).strip().replace("\n", " ")
            if e.get("type") == "extra_forbidden":
                allowed = list(_model_at(e.get("loc", ())).model_fields)
                key = str(e["loc"][-1])
                msg = f"unknown key {key!r}.{did_you_mean(key, allowed)} Allowed: {', '.join(allowed)}"
            problems.append(Problem(f"{_loc(e)}: {msg}" if _loc(e) else msg, file=path, column=_loc(e) or None))
        raise CohortError(problems) from None
