"""Preprocessing (fitted on training subjects only, affine-aware), batching, splits, config, metrics."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from training_helpers import make_training_cohort

from fusemed.cohort import Cohort
from fusemed.evaluation.metrics import binary_metrics, discrimination_report
from fusemed.training import TrainConfig
from fusemed.training.data import CaseDataset, Collate, Task
from fusemed.training.preprocessing import Preprocessing, VolumePreprocessor
from fusemed.training.splits import make_folds

MODALITIES = ["t1", "pet", "connectome", "clinical"]


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_training_cohort(tmp_path_factory.mktemp("data") / "cohort")


def test_a_value_only_in_the_test_split_does_not_change_the_fitted_stats(cohort_dir: Path, tmp_path: Path) -> None:
    cohort = Cohort.load(cohort_dir)
    train, test = cohort.subjects[:10], cohort.subjects[10:]
    before = Preprocessing.fit(cohort, train, MODALITIES, spacing=4.0)
    # poison every test subject: huge age, 1000x brighter t1, a wild connectome
    poisoned = tmp_path / "poisoned"
    shutil.copytree(cohort_dir, poisoned)
    manifest = pd.read_csv(poisoned / "manifest.csv", dtype=str, keep_default_na=False)
    for sid in test:
        row = manifest.index[manifest["subject"] == sid][0]
        manifest.loc[row, "age"] = "100000"
        img = nib.load(poisoned / manifest.loc[row, "t1"])
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * 1000, img.affine), poisoned / manifest.loc[row, "t1"])
        if manifest.loc[row, "connectome"]:
            np.savez(poisoned / manifest.loc[row, "connectome"], adjacency=np.full((4, 4), 1e6),
                     features=np.full((4, 2), 1e6))
    manifest.to_csv(poisoned / "manifest.csv", index=False)
    after = Preprocessing.fit(Cohort.load(poisoned), train, MODALITIES, spacing=4.0)
    for m in MODALITIES:
        assert before.steps[m].state() == after.steps[m].state(), m
    # ... whereas fitting on all subjects does see them
    leaked = Preprocessing.fit(Cohort.load(poisoned), cohort.subjects, MODALITIES, spacing=4.0)
    assert leaked.steps["clinical"].mean[0] > 1000


def test_preprocessing_round_trips_through_json(cohort_dir: Path, tmp_path: Path) -> None:
    cohort = Cohort.load(cohort_dir)
    prep = Preprocessing.fit(cohort, cohort.subjects[:10], MODALITIES, spacing=4.0)
    loaded = Preprocessing.load(prep.save(tmp_path / "prep.json"))
    assert loaded.shapes() == prep.shapes()
    for case in cohort.cases[10:]:
        for m in case.modalities:
            np.testing.assert_allclose(loaded(case, m), prep(case, m), rtol=1e-6)


def test_las_and_ras_copies_of_one_image_land_on_the_same_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(50, 10, (7, 6, 5)).astype(np.float32)
    ras = np.diag([3.0, 3.0, 3.0, 1.0])
    ras[:3, 3] = [-9.0, -6.0, 0.0]
    las = ras.copy()
    las[0, 0] = -3.0
    las[0, 3] = ras[0, 3] + 3.0 * (data.shape[0] - 1)  # same world box, x axis stored backwards
    step = VolumePreprocessor(ras, (7, 6, 5))
    a = step.resample(nib.Nifti1Image(data, ras))
    b = step.resample(nib.Nifti1Image(data[::-1].copy(), las))
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(a, data, atol=1e-4)
    # the exact shortcut for aligned voxel centres agrees with nilearn's interpolation (shifted box)
    grid = ras.copy()
    grid[:3, 3] -= [6.0, 3.0, -3.0]
    shifted = VolumePreprocessor(grid, (9, 6, 5))
    img = nib.Nifti1Image(data[::-1].copy(), las)
    from nilearn.image import resample_img

    ref = resample_img(img, target_affine=grid, target_shape=(9, 6, 5), interpolation="linear",
                       force_resample=True, copy_header=True).get_fdata()
    np.testing.assert_allclose(shifted.resample(img), ref, atol=1e-4)


def test_volume_grid_covers_every_training_volume_in_world_space(cohort_dir: Path) -> None:
    cohort = Cohort.load(cohort_dir)
    prep = Preprocessing.fit(cohort, cohort.subjects, ["t1", "pet"], spacing=4.0)
    t1 = prep.steps["t1"]
    assert prep.shapes()["t1"] == prep.shapes()["pet"]  # one common grid for every volume modality
    assert t1.affine[0, 0] == 4.0  # RAS output whatever the input orientation
    case = cohort["sub-01"]  # bright centre stays bright after resampling and normalisation
    out = prep(case, "t1")
    assert out.shape == (1, *t1.grid_shape) and np.isfinite(out).all()
    assert abs(out[out != 0].mean()) < 2.0


def test_collate_zero_fills_missing_modalities_and_marks_them(cohort_dir: Path) -> None:
    cohort = Cohort.load(cohort_dir)
    prep = Preprocessing.fit(cohort, cohort.subjects, MODALITIES, spacing=4.0)
    task = Task.from_cohort(cohort, "outcome")
    ds = CaseDataset(cohort.cases[:5], MODALITIES, prep, task)
    batch = Collate(MODALITIES, prep.shapes())([ds[i] for i in range(5)])
    assert batch["present"].shape == (5, 4) and batch["present"].dtype == torch.bool
    i = batch["subject"].index("004")  # no t1
    assert not batch["present"][i, 0] and (batch["inputs"]["t1"][i] == 0).all()
    assert batch["inputs"]["connectome"].shape == (5, 4, 4 + 2)  # [adjacency | features]
    assert batch["inputs"]["clinical"].shape == (5, 4)  # [values | missing indicators]
    j = batch["subject"].index("sub-01")  # age missing: value 0, indicator 1
    assert batch["inputs"]["clinical"][j, 0] == 0 and batch["inputs"]["clinical"][j, 2] == 1
    assert batch["target"].tolist() == [c.targets["outcome"] for c in cohort.cases[:5]]


def test_folds_are_subject_level_and_stratified_by_outcome_and_site() -> None:
    subjects = [f"s{i}" for i in range(40)]
    labels = [str(i % 2) for i in range(40)]
    sites = ["A" if i % 4 < 2 else "B" for i in range(40)]
    folds = make_folds(subjects, labels, sites, k=4, seed=0, val_fraction=0.25, calibration_fraction=0.2)
    tested = [s for f in folds for s in f.test]
    assert sorted(tested) == sorted(subjects)  # each subject tested exactly once
    for f in folds:
        parts = [set(f.train), set(f.val), set(f.test), set(f.calibration)]
        assert sum(map(len, parts)) == 40 and len(set().union(*parts)) == 40  # disjoint
        joint = pd.Series([f"{labels[int(s[1:])]}{sites[int(s[1:])]}" for s in f.test]).value_counts()
        assert len(joint) == 4 and set(joint) <= {2, 3}  # 10 per outcome x site stratum over 4 folds
    assert make_folds(subjects, labels, sites, 4, 0)[0].test == folds[0].test  # seeded


def test_yaml_config_with_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("cohort: data/coma\ntarget: outcome\nfusion: late\nepochs: 7\nmodalities: t1,pet\n")
    cfg = TrainConfig.from_yaml(path, epochs=2, fusion=None)
    assert cfg.trainer.epochs == 2 and cfg.model.fusion == "late" and cfg.data.modalities == ["t1", "pet"]
    assert cfg.cohort == (tmp_path / "data/coma").resolve()
    with pytest.raises(ValueError, match="moddrop"):
        TrainConfig(cohort=tmp_path, target="y", moddrop=1.5)


def test_metrics_per_pattern_and_robustness() -> None:
    assert binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))["auroc"] == 0.75
    frame = pd.DataFrame({"subject": list("abcdefgh"), "pattern": ["x+y"] * 4 + ["x"] * 4,
                          "y_true": [0, 0, 1, 1] * 2, "p": [0.1, 0.2, 0.8, 0.9, 0.1, 0.6, 0.4, 0.9]})
    report = discrimination_report(frame, "binary", ["x", "y"], min_n=4)
    assert report["per_pattern"]["x+y"]["auroc"] == 1.0 and report["per_pattern"]["x"]["n"] == 4
    assert report["robustness"]["per_pattern"]["x"] == 0.75 and report["robustness"]["worst"] == 0.75
    assert report["brier"] == pytest.approx(np.mean((frame["p"] - frame["y_true"]) ** 2))
    small = discrimination_report(frame, "binary", ["x", "y"])  # groups of 4 < min_n = 10: no summary
    assert small["robustness"]["worst"] is None and small["robustness"]["per_pattern"]["x"] == 0.75
