"""What every dataset loader shares: the registry, argument checks, seeded missingness, package look-up."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusemed.cohort import CohortSpec, write_cohort
from fusemed.models.registry import Registry

#: ``name -> loader(out, *, seed=0, missing=0.0, **options) -> Path``: each loader writes a cohort folder.
Loader = Callable[..., Path]
DATASETS: Registry[Loader] = Registry("dataset")


def takes_subjects(name: str) -> bool:
    """Whether dataset ``name`` is generated (its loader takes ``subjects=``) rather than of fixed size."""
    return "subjects" in inspect.signature(DATASETS[name]).parameters


class DatasetUnavailable(ImportError):
    """The package a dataset ships in is not installed; the message names the install command."""


def check_missing(missing: float) -> float:
    missing = float(missing)
    if not 0.0 <= missing < 1.0:
        raise ValueError(f"missing must be a share in [0, 1), got {missing}")
    return missing


def mcar_subjects(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A boolean mask holding exactly ``round(share * n)`` subjects, drawn uniformly (MCAR)."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: int(round(share * n))]] = True
    return mask


def mcar_views(rng: np.random.Generator, n: int, views: list[str], share: float) -> dict[str, np.ndarray]:
    """Independent per-view MCAR masks (``True`` = missing); a subject never loses every view.

    A subject drawn missing in all views gets one view back, chosen uniformly, so at high rates the
    realised share of each view sits slightly below ``share``.
    """
    masks = np.stack([rng.random(n) < share for _ in views], axis=1)
    keep = rng.integers(len(views), size=n)
    everything = masks.all(axis=1)
    masks[everything, keep[everything]] = False
    return {v: masks[:, i] for i, v in enumerate(views)}


def blank(frame: pd.DataFrame, columns: list[str], rows: np.ndarray) -> None:
    """Empty ``columns`` for ``rows`` (an empty manifest cell = missing)."""
    frame[columns] = frame[columns].astype(float)
    frame.loc[rows, columns] = np.nan


def package_dir(package: str, install: str) -> Path:
    """Where an installed package's files lie, found without importing it (its ``__init__`` may be heavy)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(f"this dataset ships in the package {package!r}, which is not installed: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def load_sksurv(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``sksurv.datasets.load_<name>()``: features and structured survival array, or ``DatasetUnavailable``."""
    try:
        datasets = importlib.import_module("sksurv.datasets")
    except ImportError as err:
        raise DatasetUnavailable(f"{name} ships in scikit-survival: pip install scikit-survival") from err
    return getattr(datasets, f"load_{name}")()


def write_tables(out: str | Path, name: str, manifest: pd.DataFrame, views: dict[str, list[str]],
                 targets: dict[str, dict[str, Any]]) -> Path:
    """Write ``manifest`` as cohort ``name`` whose modalities are the tabular ``views`` (name -> columns)."""
    spec = CohortSpec.model_validate({
        "name": name,
        "modalities": {view: {"kind": "tabular", "columns": columns} for view, columns in views.items()},
        "targets": targets,
    })
    return write_cohort(Path(out), spec, manifest)
