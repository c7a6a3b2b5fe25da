"""The cohort contract: a study folder on disk read into keyed per-subject records.

A cohort is ``cohort.yaml`` (modalities, their kinds, targets) + ``manifest.csv`` (one row per
subject, empty cell = missing). See ``docs/cohort-format.md``.
"""

from __future__ import annotations

from fusemed.cohort.case import Case, Survival
from fusemed.cohort.cohort import Cohort
from fusemed.cohort.problems import CohortError, Problem
from fusemed.cohort.readers import Graph, ReadError, read_graph, read_surface, read_vertex_labels, read_volume
from fusemed.cohort.spec import CohortSpec, ModalityKind, ModalitySpec, TargetKind, TargetSpec
from fusemed.cohort.validate import ValidationReport, validate_cohort
from fusemed.cohort.write import write_cohort

__all__ = [
    "Case",
    "Cohort",
    "CohortError",
    "CohortSpec",
    "Graph",
    "ModalityKind",
    "ModalitySpec",
    "Problem",
    "ReadError",
    "Survival",
    "TargetKind",
    "TargetSpec",
    "ValidationReport",
    "read_graph",
    "read_surface",
    "read_vertex_labels",
    "read_volume",
    "validate_cohort",
    "write_cohort",
]
