"""Issue 13 item 7: predict matches tabular columns by the names recorded in the run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cohort_factory import edit_spec
from training_helpers import SMALL_MODEL, make_training_cohort

from fusemed.cohort import Cohort
from fusemed.training import TrainConfig, predict_cohort, train_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("predict")
    cohort = make_training_cohort(root / "cohort", n=12)
    cfg = TrainConfig(cohort=cohort, target="outcome", fusion="concat", folds=2, epochs=1, batch_size=4,
                      spacing=4.0, progress=False, seed=3, model=SMALL_MODEL, modalities=["clinical"])
    return cohort, train_run(cfg, root / "run")


def test_reordered_columns_give_the_same_predictions(run, tmp_path):
    cohort, folder = run
    spec = cohort / "cohort.yaml"  # a comment: no longer byte-identical to the training cohort, so both
    spec.write_text(spec.read_text() + "# edited\n")  # calls predict every subject as a new one
    before = predict_cohort(folder, Cohort.load(cohort))
    edit_spec(cohort, lambda s: s["modalities"]["clinical"].update(columns=["gcs", "age"]))
    try:
        after = predict_cohort(folder, Cohort.load(cohort))
    finally:
        edit_spec(cohort, lambda s: s["modalities"]["clinical"].update(columns=["age", "gcs"]))
    pd.testing.assert_frame_equal(before, after)


def test_a_renamed_column_is_refused_naming_it(run):
    cohort, folder = run
    edit_spec(cohort, lambda s: s["modalities"]["clinical"].update(columns=["age", "days"]))
    try:
        with pytest.raises(ValueError, match=r"clinical.*gcs"):
            predict_cohort(folder, Cohort.load(cohort))
    finally:
        edit_spec(cohort, lambda s: s["modalities"]["clinical"].update(columns=["age", "gcs"]))


def test_the_run_records_tabular_column_names(run):
    import json

    _, folder = run
    state = json.loads((folder / "fold-0" / "preprocessing.json").read_text())
    assert state["clinical"]["columns"] == ["age", "gcs"]
