"""A hand-made cohort our simulator did not write, and a tiny model config, for the training tests."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import nibabel as nib
import numpy as np
import pandas as pd
import yaml

#: fusemed.models.ModelConfig fields for a model small enough to train in a second on one core
SMALL_MODEL = {"embed_dim": 8, "volume_channels": [4], "hidden": 8, "attention_heads": 2}


def make_training_cohort(root: Path, n: int = 16, seed: int = 0) -> Path:
    """Odd ids, LAS and RAS volumes with per-subject shapes and origins, a graph, tabular gaps, holes.

    The outcome is written into the images (brighter t1 centre), the graph and the table, so a model
    can learn it.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sid = ["sub-01", "P 002", "pat_003.b", "004", "sub-ÉTÉ5"][i] if i < 5 else f"s{i:03d}-x"
        y = i % 2
        folder = root / f"d{i}"
        folder.mkdir()
        shape = (8 + i % 3, 9, 7 + i % 2)
        affine = np.diag([-4.0 if i % 2 else 4.0, 4.0, 4.0, 1.0])
        affine[:3, 3] = [16.0 if i % 2 else -16.0, -16.0 + i % 2, -12.0]
        t1 = rng.normal(100, 5, shape) + 40 * y
        nib.save(nib.Nifti1Image(t1.astype(np.float32), affine), str(folder / "t1.nii.gz"))
        pet = None
        if i % 4 != 1:
            nib.save(nib.Nifti1Image(rng.gamma(2.0, 1.0 + y, shape).astype(np.float32), affine),
                     str(folder / "pet.nii"))
            pet = f"d{i}/pet.nii"
        adj = rng.random((4, 4)) + y
        conn = None
        if i % 5 != 2:
            np.savez(folder / "conn.npz", adjacency=(adj + adj.T) / 2, features=rng.random((4, 2)) + y)
            conn = f"d{i}/conn.npz"
        rows.append({"subject": sid, "site": "A" if i % 3 else "B", "t1": f"d{i}/t1.nii.gz" if i != 3 else None,
                     "pet": pet, "connectome": conn, "age": None if i % 6 == 0 else 50 + 10 * y + i,
                     "gcs": None if i % 7 == 3 else 3 + 5 * (1 - y), "outcome": y, "grade": y + (i % 3 == 0),
                     "days": 10.0 + 5 * i * (1 - y), "event": int(y or i % 3 == 0)})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    spec = {"name": "hand-made-train", "site_column": "site",
            "modalities": {"t1": {"kind": "volume"}, "pet": {"kind": "volume"},
                           "connectome": {"kind": "graph"},
                           "clinical": {"kind": "tabular", "columns": ["age", "gcs"]}},
            "targets": {"outcome": {"kind": "binary"}, "grade": {"kind": "multiclass"},
                        "survival": {"kind": "survival", "time": "days", "event": "event"}}}
    (root / "cohort.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


class KillAtSecondEpoch(L.Callback):
    """A kill at the start of the second epoch (epoch 0's last.ckpt is on disk): for the resume tests."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated kill")


class EpochsSeen(L.Callback):
    """Records the epochs a (resumed) training actually runs."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seen.append(trainer.current_epoch)
