"""Simulated cohorts follow the cohort contract, are reproducible to the byte, and carry their truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from simulate_helpers import COMA, cohort
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import Cohort, Survival, validate_cohort
from fusemed.simulate import simulate_cohort


@pytest.mark.parametrize("kind", ["coma", "epilepsy"])
def test_cohort_validates(kind):
    report = validate_cohort(cohort(kind))
    assert report.ok, report.problems
    assert report.summary["subjects"] == 6


@pytest.mark.parametrize("kind", ["coma", "epilepsy"])
def test_same_seed_gives_identical_bytes(kind):
    a, b = cohort(kind), cohort(kind, copy=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert any(str(f).endswith(".nii.gz") for f in files)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{f} differs between two runs with one seed"


def test_different_seed_differs(tmp_path):
    params = dict(COMA, n_subjects=1, seed=COMA["seed"] + 1)
    other = simulate_cohort(out=tmp_path / "other", **params)
    same = cohort("coma")
    t1 = "sub-001/anat/sub-001_T1w.nii.gz"
    assert (other / t1).read_bytes() != (same / t1).read_bytes()
    assert not pd.read_csv(other / "truth/oracle.csv")["age"].equals(pd.read_csv(same / "truth/oracle.csv")["age"][:1])


def test_coma_cases_load_as_the_contract_says():
    c = Cohort.load(cohort("coma"))
    assert c.modality_names == ("t1", "flair", "pet", "connectome", "cortex", "clinical")
    case = c.cases[0]
    graph = case.load("connectome")
    assert graph.adjacency.shape == (264, 264) and np.allclose(graph.adjacency, graph.adjacency.T)
    assert case.load("cortex").shape == (20484, 6)
    clinical = case.load("clinical")
    assert clinical.shape == (8,) and np.isfinite(clinical).all()
    assert isinstance(case.targets["survival"], Survival) and case.targets["outcome"] in (0, 1)
    oracle = pd.read_csv(cohort("coma") / "truth/oracle.csv")
    assert len(oracle) == 6 and oracle["p_outcome"].between(0, 1).all()
    for col in ("severity", "metabolism", "dmn_disconnection", "etiology", "lesion_volume_ml", "render_seed"):
        assert col in oracle.columns


def test_site_grids_differ_and_affines_are_exact():
    c = Cohort.load(cohort("coma"))
    affines = {case.site: case.load("t1").affine for case in c.cases}
    assert len(affines) == 2
    signs = {np.sign(a[0, 0]) for a in affines.values()}
    assert signs == {1.0, -1.0}, "site B stores LAS"
    for a in affines.values():  # voxel (0,0,0)..(last) spans the same field of view in mm
        assert np.isclose(abs(a[0, 0]), COMA["spacing"])


def test_epilepsy_targets_masks_for_everyone():
    root = cohort("epilepsy")
    c = Cohort.load(root)
    oracle = pd.read_csv(root / "truth/oracle.csv").set_index("subject")
    assert set(oracle["diagnosis"]) == {0, 1}
    for case in c.cases:
        mask = np.asarray(case.load_target("lesion").dataobj)
        labels = case.load_target("lesion_surface")
        assert mask.shape == case.load("t1").shape
        if case.targets["diagnosis"] == 0:
            assert mask.sum() == 0 and labels.sum() == 0, "controls get all-zero masks"
            assert np.isnan(oracle.loc[case.subject, "cnr_t1"])
        else:
            assert mask.sum() > 0 and labels.sum() > 0
            for col in ("cnr_t1", "cnr_flair", "cnr_pet", "lesion_x_mm", "lesion_radius_mm"):
                assert np.isfinite(oracle.loc[case.subject, col])
    assert oracle["mri_negative"].dtype == bool


def test_cli_simulate_writes_a_valid_cohort(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        [
            "simulate",
            "coma",
            "--subjects",
            "8",  # validate refuses a one-class target or an all-empty modality: two subjects may give either
            "--out",
            str(out),
            "--seed",
            "1",
            "--spacing",
            "6",
            "--missing",
            "0.2",
            "--sites",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert validate_cohort(out).ok
    bad = runner.invoke(app, ["simulate", "comma", "--subjects", "2", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "coma" in bad.output
