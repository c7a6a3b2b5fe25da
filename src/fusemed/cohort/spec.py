"""What a cohort declares in ``cohort.yaml``: its modalities, their kinds, and its targets.

The spec is data (nnU-Net's lesson): it is validated once, with every problem reported together, and
every later stage reads modalities by *name* and *kind*, never by position.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fusemed.choices import look_up
from fusemed.cohort.problems import CohortError, Problem
from fusemed.io import YamlError, atomic_write_text, load_yaml

#: Vertex counts (both hemispheres, left then right) of the meshes a surface modality may live on.
MESH_VERTICES: dict[str, int] = {
    "fsaverage3": 1284,
    "fsaverage4": 5124,
    "fsaverage5": 20484,
    "fsaverage6": 81924,
    "fsaverage": 327684,
}


#: A modality name keys the model's encoders (``nn.ModuleDict``), file names and CSV columns: a letter,
#: then letters, digits, ``_`` or ``-`` (no ``.``), at most 64 characters, and not a torch Module attribute.
MODALITY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
RESERVED_MODALITY_NAMES = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "clear",
    "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "items", "keys", "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
    "pop", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
    "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "update",
    "values", "xpu", "zero_grad",
})


def modality_name_problem(name: str) -> str | None:
    """Why training would reject ``name`` as a modality name (``None`` when it is fine)."""
    if not MODALITY_NAME.fullmatch(name):
        return (f"modality name {name!r} must start with a letter and hold only letters, digits, '_' or '-' "
                "(at most 64 characters)")
    if name in RESERVED_MODALITY_NAMES:
        return f"modality name {name!r} is reserved (a torch Module attribute); rename it"
    return None


class ModalityKind(str, Enum):
    """How a modality is stored and which encoder family reads it."""

    VOLUME = "volume"  #: a NIfTI image per subject (column holds its path)
    GRAPH = "graph"  #: a graph per subject: adjacency (N, N) [+ node features (N, F)]
    SURFACE = "surface"  #: per-vertex features (V, F) on a standard mesh
    TABULAR = "tabular"  #: numeric values held in the manifest's own columns


class TargetKind(str, Enum):
    """What a target is, which decides the head, the loss and the metrics."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    SURVIVAL = "survival"
    MASK = "mask"  #: a voxel mask (NIfTI) on the grid of a reference volume
    VERTEX_MASK = "vertex_mask"  #: per-vertex labels on a standard mesh


def _kind(value: Any, enum: type[Enum]) -> Any:
    """Resolve a kind, answering a misspelling with MONAI's "did you mean …?"."""
    if isinstance(value, enum):
        return value
    return enum(look_up(str(value), [k.value for k in enum]))


class ModalitySpec(BaseModel):
    """One modality: its kind, and where its values live in the manifest."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    kind: ModalityKind
    column: str | None = Field(None, description="manifest column holding the file path (default: the name)")
    columns: list[str] | None = Field(None, description="tabular only: the manifest columns it reads")
    mesh: str | None = Field(None, description="surface only: the standard mesh, e.g. fsaverage5")

    @field_validator("kind", mode="before")
    @classmethod
    def _resolve_kind(cls, value: Any) -> Any:
        return _kind(value, ModalityKind)

    @field_validator("mesh")
    @classmethod
    def _known_mesh(cls, value: str | None) -> str | None:
        return None if value is None else look_up(value, list(MESH_VERTICES))

    @model_validator(mode="after")
    def _kind_fields(self) -> ModalitySpec:
        if self.kind is ModalityKind.TABULAR and not self.columns:
            raise ValueError("a tabular modality needs `columns: [...]`")
        if self.kind is not ModalityKind.TABULAR and self.columns:
            raise ValueError(f"`columns` is for tabular modalities, not {self.kind.value}")
        return self


class TargetSpec(BaseModel):
    """One prediction target and the manifest columns that hold it."""

    model_config = ConfigDict(extra="forbid")

    kind: TargetKind
    column: str | None = Field(None, description="manifest column (default: the target's name)")
    time: str | None = Field(None, description="survival only: column of follow-up times")
    event: str | None = Field(None, description="survival only: column of event indicators (1 = event)")
    reference: str | None = Field(None, description="mask only: the volume modality whose grid it shares")
    mesh: str | None = Field(None, description="vertex_mask only: the standard mesh")
    classes: list[int] | None = Field(None, description="multiclass only: allowed labels (default 0..K-1)")

    @field_validator("kind", mode="before")
    @classmethod
    def _resolve_kind(cls, value: Any) -> Any:
        return _kind(value, TargetKind)

    @model_validator(mode="after")
    def _kind_fields(self) -> TargetSpec:
        if self.kind is TargetKind.SURVIVAL and not (self.time and self.event):
            raise ValueError("a survival target needs `time:` and `event:` columns")
        return self


class CohortSpec(BaseModel):
    """The contents of ``cohort.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    subject_column: str = "subject"
    site_column: str | None = None
    modalities: dict[str, ModalitySpec]
    targets: dict[str, TargetSpec] = Field(default_factory=dict)
    data_root: str | None = Field(
        None,
        description="a folder outside the cohort folder that manifest paths may also point into (absolute, or "
        "relative to the cohort folder); without it every manifest path must resolve inside the cohort folder",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CohortSpec:
        if not self.modalities:
            raise ValueError("declare at least one modality")
        bad = [why for why in map(modality_name_problem, self.modalities) if why]
        if bad:
            raise ValueError("; ".join(bad))
        for name, target in self.targets.items():
            if target.kind is TargetKind.MASK and target.reference is not None:
                ref = self.modalities.get(target.reference)
                if ref is None or ref.kind is not ModalityKind.VOLUME:
                    raise ValueError(f"target {name!r}: reference {target.reference!r} is not a volume modality")
        return self

    # -- column helpers -------------------------------------------------------------------------
    def modality_column(self, name: str) -> str:
        return self.modalities[name].column or name

    def target_columns(self, name: str) -> list[str]:
        t = self.targets[name]
        return [t.time, t.event] if t.kind is TargetKind.SURVIVAL else [t.column or name]  # type: ignore[list-item]

    def required_columns(self) -> dict[str, str]:
        """Every manifest column the spec reads, mapped to what declared it (for error messages)."""
        cols = {self.subject_column: "subject_column"}
        if self.site_column:
            cols[self.site_column] = "site_column"
        for name, m in self.modalities.items():
            for c in m.columns if m.kind is ModalityKind.TABULAR else [self.modality_column(name)]:
                cols[c] = f"modality {name!r}"
        for name in self.targets:
            for c in self.target_columns(name):
                cols[c] = f"target {name!r}"
        return cols

    # -- YAML -------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> CohortSpec:
        """Read and check ``cohort.yaml``; raise :class:`CohortError` listing every problem."""
        path = Path(path)
        if not path.is_file():
            raise CohortError([Problem(f"{path.name} not found: a cohort folder holds cohort.yaml", file=path)])
        try:
            raw = load_yaml(path)
        except YamlError as err:
            raise CohortError([Problem(str(err).removeprefix(f"{path}: "), file=path)]) from None
        if not isinstance(raw, dict):
            raise CohortError([Problem("expected a mapping with name, modalities, targets", file=path)])
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise CohortError(
                [Problem(_pydantic_message(e), file=path, column=_loc(e)) for e in err.errors()]
            ) from None

    def to_yaml(self, path: str | Path) -> Path:
        """Write the spec as YAML, atomically."""
        data = self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
        return atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))


def _loc(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error.get("loc", ()))


def _pydantic_message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    ctx = error.get("ctx") or {}
    if "error" in ctx:  # a ValueError raised by a validator (e.g. look_up_option): keep its own words
        msg = str(ctx["error"]).strip().replace("\n", " ")
    return f"{_loc(error)}: {msg}"
