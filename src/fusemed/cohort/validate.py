"""Read a whole cohort once and report every problem with where it is, plus a summary.

This is the contract's gatekeeper (``fusemed validate``): structure first (``Cohort.read``), then the
content of every file, so a researcher fixes their study in one pass instead of one crash at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusemed.cohort.case import Case
from fusemed.cohort.cohort import Cohort
from fusemed.cohort.problems import Problem
from fusemed.cohort.readers import (
    ReadError,
    load_volume_data,
    read_graph,
    read_surface,
    read_vertex_labels,
    read_volume,
)
from fusemed.cohort.spec import ModalityKind, TargetKind

#: A volume needs at least this many voxels along each axis: resampling, 3D convolutions and
#: neighbourhood statistics have nothing to work on below it (a 1x1x1 "volume" is a damaged file).
MIN_VOLUME_DIM = 4
#: A volume whose world-space centre lies farther than this from the median of the cohort's volumes
#: cannot overlap them (a head is ~200 mm): its affine is wrong (metres vs mm, another space).
MAX_CENTRE_OFFSET_MM = 500.0


def _not_degenerate(img: Any) -> None:
    shape = tuple(int(d) for d in img.shape[:3])
    if min(shape) < MIN_VOLUME_DIM:
        raise ReadError(f"degenerate volume {shape}: every axis needs at least {MIN_VOLUME_DIM} voxels")


def content_problems(cohort: Cohort) -> tuple[list[Problem], list[str]]:
    """Cohort-wide defects no single row shows: a modality nobody has, a target with one class or none."""
    problems: list[Problem] = []
    warnings: list[str] = []
    spec = cohort.spec
    for name, count in cohort.availability().items():
        if count == 0:
            column = ", ".join(spec.modalities[name].columns or []) or spec.modality_column(name)
            problems.append(Problem(f"modality {name!r} is empty for every subject: drop it from cohort.yaml "
                                    "or fill it", column=column))
    for name, target in spec.targets.items():
        values = [v for v in cohort.target_values(name) if v is not None]
        if not values:
            warnings.append(f"no subject has target {name!r}: fine for predict, train will refuse it")
        elif target.kind in (TargetKind.BINARY, TargetKind.MULTICLASS) and len(set(values)) < 2:
            problems.append(Problem(f"target {name!r} has only one class ({values[0]}) over {len(values)} "
                                    "subjects: nothing to learn or to score", column=spec.target_columns(name)[0]))
        elif target.kind is TargetKind.SURVIVAL and not any(v.event for v in values):
            problems.append(Problem(f"target {name!r} has no event: a survival model has nothing to learn",
                                    column=spec.target_columns(name)[1]))
    return problems, warnings


@dataclass
class ValidationReport:
    """Everything ``validate`` found: problems (errors), warnings, and a summary of the cohort."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Checker:
    """Reads each file of a case and records what is wrong with it."""

    def __init__(self, cohort: Cohort, problems: list[Problem]) -> None:
        self.cohort, self.problems = cohort, problems
        self.shapes: dict[tuple[str, str], tuple[tuple[int, ...], np.ndarray]] = {}
        self.sizes: dict[str, Counter[tuple[int, ...]]] = {}
        self.size_of: dict[tuple[str, str], tuple[int, ...]] = {}
        self.centres: dict[tuple[str, str], np.ndarray] = {}

    def _fail(self, case: Case, path: Path, err: Exception, column: str) -> None:
        self.problems.append(Problem(str(err), subject=case.subject, file=self._rel(path), column=column))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.cohort.root))
        except ValueError:
            return str(path)

    def case(self, case: Case) -> None:
        spec = self.cohort.spec
        for name in case.modalities:
            kind = spec.modalities[name].kind
            if kind is ModalityKind.TABULAR:
                continue
            path = case.path(name)
            if not path.is_file():
                continue  # already reported by Cohort.read
            try:
                if kind is ModalityKind.VOLUME:
                    img = read_volume(path)
                    _not_degenerate(img)
                    load_volume_data(img, path)
                    self.shapes[(case.subject, name)] = (img.shape[:3], img.affine)
                    centre = img.affine @ np.r_[(np.asarray(img.shape[:3]) - 1) / 2.0, 1.0]
                    self.centres[(case.subject, name)] = centre[:3]
                elif kind is ModalityKind.GRAPH:
                    graph = read_graph(path)
                    self._size(case, name, (graph.n_nodes, 0 if graph.features is None else graph.features.shape[1]))
                else:
                    self._size(case, name, (read_surface(path, spec.modalities[name].mesh).shape[1],))
            except ReadError as err:
                self._fail(case, path, err, spec.modality_column(name))
        for name, value in case.targets.items():
            target = spec.targets[name]
            if target.kind not in (TargetKind.MASK, TargetKind.VERTEX_MASK) or not value.is_file():
                continue
            try:
                if target.kind is TargetKind.VERTEX_MASK:
                    read_vertex_labels(value, target.mesh)
                else:
                    self._mask(case, name, value)
            except ReadError as err:
                self._fail(case, value, err, spec.target_columns(name)[0])

    def _size(self, case: Case, name: str, size: tuple[int, ...]) -> None:
        self.sizes.setdefault(name, Counter())[size] += 1
        self.size_of[(case.subject, name)] = size

    def _mask(self, case: Case, name: str, path: Path) -> None:
        img = read_volume(path)
        _not_degenerate(img)
        data = load_volume_data(img, path)
        if not np.isin(data, (0, 1)).all():
            raise ReadError("mask values must be 0 or 1")
        ref = self.cohort.spec.targets[name].reference or next(
            (m for m in case.modalities if case.kind(m) is ModalityKind.VOLUME), None
        )
        if ref is None or (case.subject, ref) not in self.shapes:
            return
        shape, affine = self.shapes[(case.subject, ref)]
        if img.shape[:3] != shape:
            raise ReadError(f"mask shape {img.shape[:3]} does not match its volume {ref!r} {shape}")
        if not np.allclose(img.affine, affine, atol=1e-3):
            raise ReadError(f"mask affine differs from its volume {ref!r}: mask and image must share one grid")

    def consistency(self) -> None:
        """Graphs must share a node count and surfaces a feature count: encoders need one size; volumes
        must lie in one world space (a centre far from the others is an affine in other units or space)."""
        if len(self.centres) >= 3:
            median = np.median(np.stack(list(self.centres.values())), axis=0)
            for (subject, mod), centre in self.centres.items():
                off = float(np.linalg.norm(centre - median))
                if off > MAX_CENTRE_OFFSET_MM:
                    self.problems.append(Problem(
                        f"volume {mod!r} is centred {off:.0f} mm from the cohort's volumes (over "
                        f"{MAX_CENTRE_OFFSET_MM:.0f} mm): its affine is in other units or another space",
                        subject=subject, column=self.cohort.spec.modality_column(mod)))
        for name, counts in self.sizes.items():
            if len(counts) < 2:
                continue
            usual = counts.most_common(1)[0][0]
            for (subject, mod), size in self.size_of.items():
                if mod == name and size != usual:
                    what = (
                        "(nodes, node features)"
                        if self.cohort.spec.modalities[name].kind is ModalityKind.GRAPH
                        else "(features,)"
                    )
                    self.problems.append(
                        Problem(
                            f"modality {name!r} has size {size} {what}; most subjects have {usual}",
                            subject=subject,
                            column=self.cohort.spec.modality_column(name),
                        )
                    )


def summarize(cohort: Cohort) -> dict[str, Any]:
    """Counts a person checks first: subjects, sites, availability, missing patterns, target balance."""
    n = len(cohort)
    targets: dict[str, Any] = {}
    for name, t in cohort.spec.targets.items():
        values = [v for v in cohort.target_values(name) if v is not None]
        if t.kind is TargetKind.SURVIVAL:
            targets[name] = {
                "kind": t.kind.value,
                "n": len(values),
                "events": sum(v.event for v in values),
                "median_time": float(np.median([v.time for v in values])) if values else None,
            }
        elif t.kind in (TargetKind.BINARY, TargetKind.MULTICLASS):
            targets[name] = {
                "kind": t.kind.value,
                "n": len(values),
                "counts": {str(k): c for k, c in sorted(Counter(values).items())},
            }
        else:
            targets[name] = {"kind": t.kind.value, "n": len(values)}
    return {
        "name": cohort.name,
        "subjects": n,
        "sites": dict(Counter(s or "(none)" for s in cohort.sites)),
        "availability": cohort.availability(),
        "patterns": {"+".join(p): c for p, c in cohort.patterns().most_common()},
        "targets": targets,
    }


def validate_cohort(folder: str | Path, on_case: Callable[[Case], None] | None = None) -> ValidationReport:
    """Check a cohort folder completely: structure, then every file's content.

    Args:
        folder: the cohort folder (``cohort.yaml`` + manifest).
        on_case: called after each subject is checked (progress bars).

    Returns:
        A report whose ``problems`` name subject, file, line and column; ``ok`` when there are none.
    """
    report = ValidationReport(Path(folder))
    cohort, report.problems = Cohort.read(folder)
    if cohort is None:
        return report
    checker = _Checker(cohort, report.problems)
    for case in cohort:
        checker.case(case)
        if on_case is not None:
            on_case(case)
    checker.consistency()
    problems, warnings = content_problems(cohort)
    report.problems.extend(problems)
    report.warnings.extend(warnings)
    if cohort.unused_columns:
        report.warnings.append(
            f"manifest columns not declared in cohort.yaml (ignored): {', '.join(cohort.unused_columns)}"
        )
    report.summary = summarize(cohort)
    return report
