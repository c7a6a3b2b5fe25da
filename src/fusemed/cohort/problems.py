"""Problems found in a cohort, reported all together and never as a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One defect: what is wrong, and where (subject, file, manifest line, column)."""

    message: str
    subject: str | None = None
    file: Path | str | None = None
    line: int | None = None
    column: str | None = None

    def where(self) -> str:
        parts = []
        if self.subject is not None:
            parts.append(f"subject {self.subject}")
        if self.file is not None:
            parts.append(str(self.file))
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


class CohortError(ValueError):
    """Raised when a cohort breaks the contract; ``problems`` lists every defect found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in cohort:\n{lines}")
