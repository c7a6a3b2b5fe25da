"""The cohort contract read into keyed records: lazy, affine-preserving, missing = absent key."""

from __future__ import annotations

import numpy as np
import pytest
from cohort_factory import LAS, RAS

from fusemed.cohort import Cohort, CohortSpec, Graph, Survival, write_cohort


def test_valid_hand_made_cohort_loads(cohort_dir):
    cohort = Cohort.load(cohort_dir)
    assert len(cohort) == 6
    assert cohort.subjects[:3] == ["sub-01", "P 002", "pat_003.b"]
    assert cohort.modality_names == ("t1", "pet", "connectome", "cortex", "clinical")
    assert cohort.unused_columns == ("notes",)


def test_missing_modality_is_an_absent_key(cohort_dir):
    case = Cohort.load(cohort_dir)["P 002"]  # i=1: no PET
    assert "pet" not in case.modalities and not case.has("pet")
    assert case.pattern == "t1+connectome+cortex+clinical"
    with pytest.raises(KeyError, match="has no 'pet'"):
        case.load("pet")


def test_volumes_load_lazily_and_keep_their_affine(cohort_dir):
    cohort = Cohort.load(cohort_dir)
    ras, las = cohort["sub-01"].load("t1"), cohort["P 002"].load("t1")
    # a nibabel proxy: nothing read until asked
    assert not isinstance(ras.dataobj, np.ndarray)
    np.testing.assert_allclose(ras.affine, RAS)
    np.testing.assert_allclose(las.affine, LAS)
    assert ras.shape != las.shape  # per-subject shapes are kept, resampling happens later
    data, affine = cohort["P 002"].volume_data("t1")
    assert data.shape == las.shape and data.dtype == np.float32


def test_kinds_load_to_their_documented_types(cohort_dir):
    case = Cohort.load(cohort_dir)["pat_003.b"]
    graph = case.load("connectome")
    assert isinstance(graph, Graph) and graph.adjacency.shape == (5, 5) and graph.features.shape == (5, 2)
    assert case.load("cortex").shape == (1284, 3)
    clinical = case.load("clinical")  # age is empty for this subject: NaN, not a guess
    assert clinical.shape == (3,) and np.isnan(clinical[0]) and clinical[1] == 0
    assert case.targets["outcome"] == 0
    assert case.targets["survival"] == Survival(90.0, False)
    assert case.load_target("lesion").shape == case.load("t1").shape


def test_patterns_and_subset(cohort_dir):
    cohort = Cohort.load(cohort_dir)
    patterns = cohort.patterns()
    assert sum(patterns.values()) == 6
    assert patterns[("t1", "connectome", "cortex", "clinical")] == 2  # i = 1, 4 lack PET
    sub = cohort.subset(["x6", "sub-01"])
    assert sub.subjects == ["x6", "sub-01"] and sub.spec is cohort.spec


def test_write_cohort_round_trip(tmp_path, cohort_dir):
    cohort = Cohort.load(cohort_dir)
    import pandas as pd

    frame = pd.read_csv(cohort_dir / "manifest.csv", dtype=str, keep_default_na=False)
    frame.loc[0, "pet"] = None
    write_cohort(cohort_dir, cohort.spec, frame)
    again = Cohort.load(cohort_dir)
    assert not again["sub-01"].has("pet")
    assert CohortSpec.from_yaml(cohort_dir / "cohort.yaml") == cohort.spec
    assert not list(cohort_dir.glob(".*.tmp"))  # atomic writes leave no temp files
