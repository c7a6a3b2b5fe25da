"""``mice``: 32 mouse connectomes from diffusion MRI, four genotypes (Wang et al. 2020).

Source
    Wang N, Anderson RJ, Ashbrook DG, et al. *Variability and heritability of mouse brain structure:
    microscopic MRI atlases and connectomes for diverse strains.* NeuroImage 222:117274 (2020),
    doi:10.1016/j.neuroimage.2020.117274. The files ship in the PyPI package ``graspologic``
    (``graspologic/datasets/mice/``, MIT licence, Microsoft / NeuroData), which ``load_mice`` reads;
    here they are parsed directly so graspologic itself (which pins numpy<2) is never imported.
    Install with ``pip install --no-deps graspologic==3.4.4``.

What is in the package
    ``edgelists/sub-<id>_ses-1_dti.edgelist`` — one undirected weighted edge list per mouse ("i j w",
    nodes 0..331, weight = streamline count); ``participants.csv`` — ``participant_id, genotype, sex``;
    ``atlas.csv``/``blocks.csv`` — the 332 regions (166 per hemisphere, Waxholm space) and their 14
    super-structures; ``features/<id>.csv`` — per-region label statistics (voxels, volume_mm3, DTI scalars).

Cohort layout (32 subjects, 8 per genotype, 4 male + 4 female each)
    * ``connectome`` (graph): ``sub-<id>/conn/sub-<id>_connectome.npz`` with ``adjacency`` (332, 332),
      symmetric, zero diagonal, raw streamline counts (absent edge = 0), node order = the edge lists';
      float32, stored uncompressed (14 MB for the cohort; compressing took 30 times longer than parsing).
    * ``anatomy`` (tabular, one column ``brain_volume``): total brain volume in mm³, the sum of
      ``volume_mm3`` over the 332 regions (label 0, the unlabelled background, left out).
    * ``genotype`` (multiclass): 0 = B6 (C57BL/6J), 1 = BTBR (BTBR T+ Itpr3tf/J), 2 = CAST (CAST/EiJ),
      3 = DBA2 (DBA/2J).
    * ``missing > 0``: ``anatomy`` is dropped for that share of mice (exact count, MCAR, seeded); the
      connectome, the only imaging modality, is never dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusemed.cohort import CohortSpec, write_cohort
from fusemed.datasets._common import DATASETS, blank, check_missing, mcar_subjects, package_dir
from fusemed.io import atomic_save

INSTALL = "pip install --no-deps graspologic==3.4.4"
GENOTYPES = ("B6", "BTBR", "CAST", "DBA2")
N_REGIONS = 332


def mice_files() -> Path:
    """The folder holding graspologic's mouse connectome files (raises naming the install command)."""
    folder = package_dir("graspologic", INSTALL) / "datasets" / "mice"
    if not (folder / "participants.csv").is_file():
        raise FileNotFoundError(f"{folder}: no participants.csv; reinstall with `{INSTALL}`")
    return folder


def read_edgelist(path: Path, n_nodes: int = N_REGIONS) -> np.ndarray:
    """A symmetric ``(n_nodes, n_nodes)`` adjacency from an undirected "i j weight" edge list."""
    edges = pd.read_csv(path, sep=r"\s+", header=None, names=["i", "j", "w"], dtype={"i": int, "j": int})
    adjacency = np.zeros((n_nodes, n_nodes), dtype=np.float32)
    i, j, w = edges["i"].to_numpy(), edges["j"].to_numpy(), edges["w"].to_numpy(np.float32)
    adjacency[i, j] = w
    adjacency[j, i] = w
    return adjacency


def brain_volume(path: Path) -> float:
    """Total brain volume (mm³) from a per-region label-statistics file (label 0 = background)."""
    stats = pd.read_csv(path, skiprows=2)
    return float(stats.loc[stats["ROI"] != 0, "volume_mm3"].sum())


def load_mice(out: str | Path, *, seed: int = 0, missing: float = 0.0) -> Path:
    """Write the 32 mouse connectomes as a cohort folder in ``out``; see the module docstring."""
    missing = check_missing(missing)
    src = mice_files()
    out = Path(out)
    participants = pd.read_csv(src / "participants.csv")
    rows = []
    for pid, genotype in zip(participants["participant_id"], participants["genotype"], strict=True):
        edgelist = src / "edgelists" / f"{pid}_ses-1_dti.edgelist"
        rel = f"{pid}/conn/{pid}_connectome.npz"
        adjacency = read_edgelist(edgelist)
        atomic_save(out / rel, lambda tmp, a=adjacency: np.savez(tmp, adjacency=a))  # 440 kB; zlib takes 30x longer
        features = src / "features" / f"{pid.removeprefix('sub-')}.csv"
        rows.append({"subject": pid, "connectome": rel,
                     "brain_volume": brain_volume(features) if features.is_file() else np.nan,
                     "genotype": GENOTYPES.index(genotype)})
    manifest = pd.DataFrame(rows)
    blank(manifest, ["brain_volume"], mcar_subjects(np.random.default_rng(seed), len(manifest), missing))
    spec = CohortSpec.model_validate({
        "name": "mice",
        "modalities": {"connectome": {"kind": "graph"},
                       "anatomy": {"kind": "tabular", "columns": ["brain_volume"]}},
        "targets": {"genotype": {"kind": "multiclass", "classes": list(range(len(GENOTYPES)))}},
    })
    return write_cohort(out, spec, manifest)


DATASETS.register("mice", load_mice)
