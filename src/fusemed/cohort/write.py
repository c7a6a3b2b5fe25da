"""Write a cohort folder in the contract's format (simulators and importers use this)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from fusemed.cohort.cohort import SPEC_FILE
from fusemed.cohort.spec import CohortSpec, atomic_write_text


def write_cohort(folder: str | Path, spec: CohortSpec, manifest: pd.DataFrame) -> Path:
    """Write ``cohort.yaml`` and ``manifest.csv`` atomically; NaN/None become empty cells (missing).

    Paths in ``manifest`` must already be relative to ``folder``; the files themselves are the
    caller's to write (before this call, so a reader never sees a manifest pointing at nothing).
    """
    root = Path(folder)
    missing = [c for c in spec.required_columns() if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks columns the spec declares: {', '.join(missing)}")
    buffer = io.StringIO()
    manifest.to_csv(buffer, index=False, na_rep="")
    atomic_write_text(root / "manifest.csv", buffer.getvalue())
    spec.to_yaml(root / SPEC_FILE)
    return root
