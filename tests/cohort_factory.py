"""Small hand-made cohorts written inside tests: the contract as a real study would lay it out."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

RAS = np.diag([3.0, 3.0, 3.0, 1.0])
LAS = np.diag([-3.0, 3.0, 3.0, 1.0])


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), str(path))
    return path.name


def make_cohort(root: Path, n: int = 6, seed: int = 0) -> Path:
    """A valid cohort: odd ids, mixed .nii/.nii.gz, RAS and LAS, per-subject shapes, a graph and a
    surface modality, a tabular modality with gaps, binary + survival + mask targets, holes."""
    rng = np.random.default_rng(seed)
    ids = ["sub-01", "P 002", "pat_003.b", "004", "sub-ÉTÉ5", "x6", "sub-07", "sub-08"][:n]
    rows = []
    for i, sid in enumerate(ids):
        folder = root / f"s{i}"
        shape = (10 + i % 3, 12, 9 + i % 2)
        affine = LAS if i % 2 else RAS
        ext = ".nii" if i % 3 == 0 else ".nii.gz"
        t1 = rng.normal(100, 10, shape)
        write_nifti(folder / f"t1{ext}", t1, affine)
        mask = np.zeros(shape)
        mask[2:4, 3:5, 2:4] = 1
        write_nifti(folder / "lesion.nii.gz", mask, affine)
        pet = None
        if i % 3 != 1:  # a hole in PET
            write_nifti(folder / "pet.nii.gz", rng.gamma(2.0, 1.0, shape), affine)
            pet = f"s{i}/pet.nii.gz"
        adj = rng.random((5, 5))
        np.savez(folder / "conn.npz", adjacency=(adj + adj.T) / 2, features=rng.random((5, 2)))
        np.savez(folder / "cortex.npz", features=rng.random((1284, 3)).astype(np.float32))
        rows.append(
            {
                "subject": sid,
                "site": "A" if i < n // 2 else "B",
                "t1": f"s{i}/t1{ext}",
                "pet": pet,
                "connectome": f"s{i}/conn.npz",
                "cortex": f"s{i}/cortex.npz",
                "age": None if i == 2 else 40 + i,
                "sex": i % 2,
                "gcs": None if i == 4 else 3 + i,
                "outcome": i % 2,
                "days": 30.0 * (i + 1),
                "event": int(i % 3 == 0),
                "lesion": f"s{i}/lesion.nii.gz",
                "notes": "free text",
            }
        )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    spec = {
        "name": "hand-made",
        "site_column": "site",
        "modalities": {
            "t1": {"kind": "volume"},
            "pet": {"kind": "volume"},
            "connectome": {"kind": "graph"},
            "cortex": {"kind": "surface", "mesh": "fsaverage3"},
            "clinical": {"kind": "tabular", "columns": ["age", "sex", "gcs"]},
        },
        "targets": {
            "outcome": {"kind": "binary"},
            "survival": {"kind": "survival", "time": "days", "event": "event"},
            "lesion": {"kind": "mask", "reference": "t1"},
        },
    }
    (root / "cohort.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def edit_manifest(root: Path, who: str, **cells: object) -> None:
    frame = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    for col, value in cells.items():
        frame.loc[frame["subject"] == who, col] = "" if value is None else str(value)
    frame.to_csv(root / "manifest.csv", index=False)


def edit_spec(root: Path, edit) -> None:
    spec = yaml.safe_load((root / "cohort.yaml").read_text())
    edit(spec)
    (root / "cohort.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
