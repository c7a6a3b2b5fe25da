"""Datasets laid out as cohort folders: real public data reachable offline, and an independent generator.

``DATASETS`` maps a name to a loader ``loader(out, *, seed=0, missing=0.0) -> Path`` that writes a valid
cohort folder (``cohort.yaml`` + ``manifest.csv`` + files) into ``out``. Loaders read only files that
ship inside installed packages; nothing is downloaded. ``docs/datasets.md`` lists each dataset's source,
licence and layout; the module docstrings hold the same.

=============  =========================================  ==========================================
name           what                                       ships in
=============  =========================================  ==========================================
mice           32 mouse DTI connectomes, 4 genotypes       graspologic (``pip install --no-deps``)
whas500        500 heart-attack patients, survival         scikit-survival
wdbc           569 breast FNA images' nuclear features     scikit-learn
flchain        7874 adults, serum free light chains         scikit-survival
gbsg2          686 node-positive breast cancers, survival   scikit-survival
aids           1151 HIV patients (ACTG 320), survival       scikit-survival
independent    synthetic, written apart from the simulator  (generated)
=============  =========================================  ==========================================
"""

from __future__ import annotations

from pathlib import Path

from fusemed.datasets import aids, flchain, gbsg2, independent, mice, wdbc, whas500  # noqa: F401 - they register
from fusemed.datasets._common import DATASETS, DatasetUnavailable, Loader, takes_subjects


def load_dataset(name: str, out: str | Path, *, seed: int = 0, missing: float = 0.0, **options: object) -> Path:
    """Lay dataset ``name`` out as a cohort folder in ``out`` (a typo gets "did you mean …")."""
    return DATASETS[name](Path(out), seed=seed, missing=missing, **options)


__all__ = ["DATASETS", "DatasetUnavailable", "Loader", "load_dataset", "takes_subjects"]
