"""Tiny simulated cohorts shared by the simulator tests (module-level cache: each is written once)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from fusemed.simulate import simulate_cohort

_ROOT = Path(tempfile.mkdtemp(prefix="fusemed-sim-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)

COMA = {"scenario": "coma", "n_subjects": 6, "seed": 7, "spacing": 6.0, "sites": 2}
EPILEPSY = {"scenario": "epilepsy", "n_subjects": 6, "seed": 3, "spacing": 4.0, "sites": 2}


@functools.cache
def cohort(kind: str, copy: int = 0) -> Path:
    """Write (once per test session) the tiny `kind` cohort; `copy` > 0 writes it again elsewhere."""
    params = dict(COMA if kind == "coma" else EPILEPSY)
    return simulate_cohort(out=_ROOT / f"{kind}-{copy}", **params)
