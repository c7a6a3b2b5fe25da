"""A cohort folder read into :class:`Case` records, with every structural problem reported at once."""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.cohort.case import Case, Survival
from fusemed.cohort.problems import CohortError, Problem
from fusemed.cohort.spec import CohortSpec, ModalityKind, TargetKind
from fusemed.io import subject_id_problem

SPEC_FILE = "cohort.yaml"
MANIFEST_NAMES = ("manifest.csv", "manifest.tsv")


def find_manifest(root: Path) -> Path:
    for name in MANIFEST_NAMES:
        if (root / name).is_file():
            return root / name
    raise CohortError([Problem("no manifest.csv or manifest.tsv in the cohort folder", file=root)])


def read_manifest(path: Path) -> pd.DataFrame:
    """Read the manifest as strings; an empty cell becomes ``""`` (missing), never a guessed NaN."""
    sep = "\t" if path.suffix == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh, delimiter=sep, skipinitialspace=True), [])
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as err:
        raise CohortError([Problem(f"unreadable manifest ({type(err).__name__}: {err})", file=path)]) from None
    seen: dict[str, int] = {}
    problems = []
    for i, name in enumerate(header, start=1):
        if name in seen:
            problems.append(Problem(f"duplicate column {name!r} (columns {seen[name]} and {i}): a value would be "
                                    "read from one of them silently", file=path.name, line=1, column=name))
        seen.setdefault(name, i)
    if problems:
        raise CohortError(problems)
    return frame


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value


class _RowParser:
    """Turns one manifest row into a Case, appending problems instead of raising."""

    def __init__(self, root: Path, spec: CohortSpec, manifest: Path, problems: list[Problem]) -> None:
        self.root, self.spec, self.manifest, self.problems = root, spec, manifest, problems
        self.bases = [root.resolve()]
        if spec.data_root:
            self.bases.append((root / spec.data_root).resolve())

    def file(self, cell: str, what: str, subject: str, line: int, column: str) -> Path | None:
        """The cell's path if it resolves (symlinks followed) inside the cohort folder or its data_root."""
        path = self.root / cell
        try:
            resolved = path.resolve()
        except (OSError, ValueError, RuntimeError):
            resolved = None
        if resolved is None or not any(resolved.is_relative_to(base) for base in self.bases):
            allowed = "the cohort folder or its data_root" if len(self.bases) > 1 else "the cohort folder"
            self.problem(
                f"{what}: path {cell!r} resolves outside {allowed} (`data_root:` in cohort.yaml allows one "
                "external folder; see docs/security.md)",
                subject, line, column,
            )
            return None
        if not path.is_file():
            self.problem(f"{what}: file not found: {cell}", subject, line, column, file=path)
        return path

    def problem(
        self, message: str, subject: str, line: int, column: str | None = None, file: Path | None = None
    ) -> None:
        self.problems.append(
            Problem(message, subject=subject, file=file or self.manifest.name, line=line, column=column)
        )

    def __call__(self, row: dict[str, str], line: int) -> Case | None:
        spec = self.spec
        subject = row[spec.subject_column].strip()
        if not subject:
            self.problem("empty subject id", "?", line, spec.subject_column)
            return None
        unsafe = subject_id_problem(subject)
        if unsafe:  # ids name output files (OUT/{subject}_prob.nii.gz): one safe file-name component only
            self.problem(unsafe, subject, line, spec.subject_column)
            return None
        sources: dict[str, Any] = {}
        for name, m in spec.modalities.items():
            if m.kind is ModalityKind.TABULAR:
                values = self._tabular(row, m.columns or [], subject, line)
                if values is not None:
                    sources[name] = values
                continue
            cell = row[spec.modality_column(name)].strip()
            if not cell:
                continue
            path = self.file(cell, f"modality {name!r}", subject, line, spec.modality_column(name))
            if path is not None:
                sources[name] = path
        if not sources:
            self.problem("subject has no modality at all (every modality cell is empty)", subject, line)
        targets = {}
        for name in spec.targets:
            value = self._target(name, row, subject, line)
            if value is not None:
                targets[name] = value
        site = row[spec.site_column].strip() or None if spec.site_column else None
        return Case(subject=subject, site=site, spec=spec, sources=sources, targets=targets)

    def _tabular(self, row: dict[str, str], columns: list[str], subject: str, line: int) -> np.ndarray | None:
        values = []
        for col in columns:
            text = row[col].strip()
            if not text:
                values.append(math.nan)
                continue
            value = _number(text)
            if value is None or not math.isfinite(value):
                self.problem(
                    f"expected a finite number, found {text!r} (encode categories as integers)", subject, line, col
                )
                value = math.nan
            values.append(value)
        array = np.asarray(values, dtype=np.float32)
        return None if np.isnan(array).all() else array

    def _target(self, name: str, row: dict[str, str], subject: str, line: int) -> Any:
        t = self.spec.targets[name]
        cols = self.spec.target_columns(name)
        cells = [row[c].strip() for c in cols]
        if not any(cells):
            return None
        if t.kind is TargetKind.SURVIVAL:
            time, event = (_number(c) for c in cells)
            ok = True
            if time is None or not math.isfinite(time) or time < 0:
                self.problem(f"survival time must be a number >= 0, found {cells[0]!r}", subject, line, cols[0])
                ok = False
            if event not in (0.0, 1.0):
                self.problem(f"event must be 0 or 1, found {cells[1]!r}", subject, line, cols[1])
                ok = False
            return Survival(float(time), bool(event)) if ok else None  # type: ignore[arg-type]
        text = cells[0]
        if t.kind in (TargetKind.MASK, TargetKind.VERTEX_MASK):
            return self.file(text, f"target {name!r}", subject, line, cols[0])
        value = _number(text)
        allowed = (0, 1) if t.kind is TargetKind.BINARY else t.classes
        if value is None or value != int(value) or value < 0 or (allowed is not None and int(value) not in allowed):
            expected = (
                "0 or 1"
                if t.kind is TargetKind.BINARY
                else (f"one of {allowed}" if allowed else "an integer class label >= 0")
            )
            self.problem(f"target {name!r} ({t.kind.value}) must be {expected}, found {text!r}", subject, line, cols[0])
            return None
        return int(value)


class Cohort:
    """The cases of a study and the spec they follow.

    Examples:
        >>> cohort = Cohort.load("my-study")          # doctest: +SKIP
        >>> cohort["sub-01"].modalities                # doctest: +SKIP
        ('t1', 'pet', 'clinical')
    """

    def __init__(self, root: Path, spec: CohortSpec, cases: Sequence[Case], unused_columns: Sequence[str] = ()):
        self.root = Path(root)
        self.spec = spec
        self.cases = list(cases)
        self.unused_columns = tuple(unused_columns)
        self._index = {c.subject: i for i, c in enumerate(self.cases)}

    @classmethod
    def load(cls, folder: str | Path) -> Cohort:
        """Read ``cohort.yaml`` and the manifest; raise :class:`CohortError` listing every problem.

        Checks structure and file existence only; image contents are read lazily (``validate_cohort``
        reads everything once).
        """
        cohort, problems = cls.read(folder)
        if problems or cohort is None:
            raise CohortError(problems)
        return cohort

    @classmethod
    def read(cls, folder: str | Path) -> tuple[Cohort | None, list[Problem]]:
        """Like :meth:`load` but return the problems with the cases that parsed, for validation."""
        root = Path(folder)
        if not root.is_dir():
            return None, [Problem("cohort folder not found", file=root)]
        try:
            spec = CohortSpec.from_yaml(root / SPEC_FILE)
            manifest = find_manifest(root)
            frame = read_manifest(manifest)
        except CohortError as err:
            return None, err.problems
        problems: list[Problem] = []
        for col, why in spec.required_columns().items():
            if col not in frame.columns:
                problems.append(
                    Problem(
                        f"column {col!r} (declared by {why}) is absent from the manifest; "
                        f"columns present: {', '.join(frame.columns)}",
                        file=manifest.name,
                        column=col,
                    )
                )
        if problems:
            return None, problems
        parse = _RowParser(root, spec, manifest, problems)
        cases: list[Case] = []
        seen: dict[str, int] = {}
        for i, row in enumerate(frame.to_dict("records")):
            line = i + 2  # header is line 1
            case = parse(row, line)
            if case is None:
                continue
            if case.subject in seen:
                problems.append(
                    Problem(
                        f"duplicate subject id (first on line {seen[case.subject]})",
                        subject=case.subject,
                        file=manifest.name,
                        line=line,
                        column=spec.subject_column,
                    )
                )
                continue
            seen[case.subject] = line
            cases.append(case)
        if not cases and not problems:
            problems.append(Problem("manifest has no subjects", file=manifest.name))
        unused = [c for c in frame.columns if c not in spec.required_columns()]
        return cls(root, spec, cases, unused), problems

    # -- collection protocol ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __getitem__(self, key: int | str) -> Case:
        return self.cases[self._index[key] if isinstance(key, str) else key]

    def __contains__(self, subject: object) -> bool:
        return subject in self._index

    def __repr__(self) -> str:
        return f"Cohort({self.spec.name!r}, {len(self)} subjects, modalities={list(self.modality_names)})"

    # -- views ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def subjects(self) -> list[str]:
        return [c.subject for c in self.cases]

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.spec.modalities)

    @property
    def sites(self) -> list[str | None]:
        return [c.site for c in self.cases]

    def subset(self, subjects: Iterable[str]) -> Cohort:
        """A cohort of the given subjects (in the given order), sharing this one's spec."""
        return Cohort(self.root, self.spec, [self[s] for s in subjects], self.unused_columns)

    def patterns(self) -> Counter[tuple[str, ...]]:
        """How many subjects have each combination of present modalities."""
        return Counter(c.modalities for c in self.cases)

    def availability(self) -> dict[str, int]:
        """Number of subjects that have each modality."""
        return {m: sum(c.has(m) for c in self.cases) for m in self.modality_names}

    def target_values(self, name: str) -> list[Any]:
        """Each case's value of a target (``None`` where missing), in case order."""
        if name not in self.spec.targets:
            from fusemed.choices import look_up

            look_up(name, list(self.spec.targets))
        return [c.targets.get(name) for c in self.cases]
