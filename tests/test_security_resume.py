"""Issue 13 items 2, 3 and 5: a changed cohort or config is never silently resumed; last.ckpt every
epoch; every checkpoint load passes weights_only=True; torch>=2.6."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from training_helpers import SMALL_MODEL, make_training_cohort

from fusemed.training import TrainConfig, train_run


def _config(cohort: Path, **kw) -> TrainConfig:
    base = dict(cohort=cohort, target="outcome", fusion="concat", folds=2, epochs=1, batch_size=4,
                spacing=4.0, progress=False, seed=3, model=SMALL_MODEL)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume")
    cohort = make_training_cohort(root / "cohort", n=12)
    fits: list[dict] = []
    original = L.Trainer.fit

    def spy(self, *args, **kwargs):
        fits.append(kwargs)
        return original(self, *args, **kwargs)

    L.Trainer.fit = spy
    try:
        run = train_run(_config(cohort), root / "run")
    finally:
        L.Trainer.fit = original
    (root / "fits.txt").write_text(repr([k.get("weights_only") for k in fits]))
    return cohort, run


def _copy(finished, tmp_path):
    cohort, run = finished
    shutil.copytree(cohort, tmp_path / "cohort")
    shutil.copytree(run, tmp_path / "run")
    config = tmp_path / "run" / "config.yaml"
    config.write_text(config.read_text().replace(str(cohort.resolve()), str((tmp_path / "cohort").resolve())))
    return tmp_path / "cohort", tmp_path / "run"


def test_a_dropped_subject_or_new_label_refuses_resume(finished, tmp_path):
    cohort, run = _copy(finished, tmp_path)
    before = (run / "predictions.csv").read_bytes()
    frame = pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)
    frame.iloc[:-2].to_csv(cohort / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=r"cohort changed.*manifest\.csv"):
        train_run(_config(cohort), run)
    assert (run / "predictions.csv").read_bytes() == before


def test_a_changed_image_is_named(finished, tmp_path):
    cohort, run = _copy(finished, tmp_path)
    with open(cohort / "d0" / "t1.nii.gz", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ValueError, match=re.escape("d0/t1.nii.gz")):
        train_run(_config(cohort), run)


def test_unchanged_cohort_resumes(finished, tmp_path):
    cohort, run = _copy(finished, tmp_path)
    before = (run / "predictions.csv").read_bytes()
    train_run(_config(cohort), run)
    assert (run / "predictions.csv").read_bytes() == before


def test_more_epochs_on_a_finished_run_is_refused(finished, tmp_path):
    cohort, run = _copy(finished, tmp_path)
    config_before = (run / "config.yaml").read_text()
    with pytest.raises(ValueError, match="epochs"):
        train_run(_config(cohort, epochs=30), run)
    assert (run / "config.yaml").read_text() == config_before


def test_every_checkpoint_load_passes_weights_only(finished):
    cohort, run = finished
    assert (run.parent / "fits.txt").read_text() == "[True, True]"
    src = Path(__file__).parents[1] / "src"
    for path in src.rglob("*.py"):
        for call in re.findall(r"torch\.load\([^)]*\)", path.read_text()):
            assert "weights_only=True" in call, (path, call)


def test_last_checkpoint_is_the_last_epoch_even_without_improvement(tmp_path):
    cohort = make_training_cohort(tmp_path / "cohort", n=8)
    run = train_run(_config(cohort, folds=2, epochs=3, patience=10, lr=1e-12), tmp_path / "run")
    state = torch.load(run / "fold-0/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 2


def test_torch_lower_bound_is_2_6():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'"torch>=2\.(6|[7-9]|\d\d)', text)
