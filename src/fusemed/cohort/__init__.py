"""The cohort contract: a study folder on disk read into keyed per-subject records.

A cohort is ``cohort.yaml`` (modalities, their kinds, targets) + ``manifest.csv`` (one row per
subject, empty cell = missing). See ``docs/cohort-format.md``.
"""

from __future__ import annotations

import lazy_loader

# lazy (SPEC 1): importing a submodule (e.g. a config) does not import torch, MONAI or Lightning
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "case": ["Case", "Survival"],
        "cohort": ["Cohort"],
        "problems": ["CohortError", "Problem"],
        "readers": ["Graph", "ReadError", "read_graph", "read_surface", "read_vertex_labels", "read_volume"],
        "spec": ["CohortSpec", "ModalityKind", "ModalitySpec", "TargetKind", "TargetSpec"],
        "validate": ["ValidationReport", "validate_cohort"],
        "write": ["write_cohort"],
    },
)
