"""Lay a simulated cohort out on disk: BIDS-like subject folders, the manifest, and the hidden truth.

    DIR/cohort.yaml, manifest.csv, participants.tsv, dataset_description.json
    DIR/sub-001/anat/sub-001_T1w.nii.gz, sub-001_FLAIR.nii.gz
    DIR/sub-001/pet/sub-001_trc-FDG_pet.nii.gz
    DIR/sub-001/func/sub-001_connectome.npz        (adjacency (N,N), features (N,3))
    DIR/sub-001/surf/sub-001_space-fsaverage5_cortex.npz   (features (20484,6))
    DIR/truth/oracle.csv, truth/sites.csv, truth/masks/sub-001_lesion_mask.nii.gz, ..._lesion_surface.npz

Every file is written atomically (temporary file in the same folder, then `os.replace`) and
deterministically (nibabel gzips with mtime 0; numpy's zip entries carry a fixed date).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from fusemed.io import atomic_save
from fusemed.simulate.geometry import Grid


def write_nifti(path: Path, data: np.ndarray, grid: Grid, dtype: type) -> None:
    """NIfTI with the exact site affine in both qform and sform (code 1: scanner space)."""
    img = nib.Nifti1Image(np.asarray(data).astype(dtype), grid.affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(grid.affine, code=1)
    img.set_sform(grid.affine, code=1)
    atomic_save(path, lambda p: img.to_filename(p))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    def save(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_save(path, save)


def write_table(path: Path, frame: pd.DataFrame, sep: str = ",") -> None:
    atomic_save(path, lambda p: frame.to_csv(p, sep=sep, index=False, lineterminator="\n"))


def write_text(path: Path, text: str) -> None:
    atomic_save(path, lambda p: p.write_text(text))


def write_dataset_description(root: Path, scenario: str, seed: int) -> None:
    desc = {
        "Name": f"fusemed simulated {scenario} cohort (seed {seed})",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "fusemed simulate"}],
    }
    write_text(root / "dataset_description.json", json.dumps(desc, indent=2) + "\n")


def write_cohort_files(
    root: Path, name: str, modalities: dict[str, Any], targets: dict[str, Any], manifest: pd.DataFrame
) -> Path:
    """cohort.yaml + manifest.csv through the cohort contract's writer."""
    from fusemed.cohort import CohortSpec, write_cohort

    spec = CohortSpec.model_validate(
        {"name": name, "subject_column": "subject", "site_column": "site", "modalities": modalities, "targets": targets}
    )
    return write_cohort(root, spec, manifest)
