"""The run folder as one type: what every verb (train, predict, evaluate, report) reads and writes.

Public API: :class:`Run` (``Run.create`` at training, ``Run.open`` everywhere else), :class:`RunTask`,
the run-kind registry :data:`RUN_KINDS` (:class:`RunKind`: prognosis, detection) and
:class:`RunLayoutError` (a folder of another layout, refused with what to do).
"""

from __future__ import annotations

from fusemed.run.kinds import RUN_KINDS, RunKind
from fusemed.run.run import LAYOUT, Run, RunLayoutError, RunTask, read_predictions

__all__ = ["LAYOUT", "RUN_KINDS", "Run", "RunKind", "RunLayoutError", "RunTask", "read_predictions"]
