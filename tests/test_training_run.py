"""End-to-end training on a hand-made cohort: run folder contract, resume after a kill, predict, CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from training_helpers import SMALL_MODEL, EpochsSeen, KillAtSecondEpoch, make_training_cohort
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import Cohort
from fusemed.models import FUSIONS
from fusemed.training import TrainConfig, evaluate_run, predict_cohort, predict_run, train_run


def _config(cohort: Path, **kw) -> TrainConfig:
    base = dict(cohort=cohort, target="outcome", fusion="concat", folds=2, epochs=2, batch_size=4,
                spacing=4.0, progress=False, seed=3, model=SMALL_MODEL)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train")
    cohort = make_training_cohort(root / "cohort")
    run = train_run(_config(cohort, moddrop=0.3), root / "run")
    return cohort, run


def test_run_folder_holds_out_of_fold_predictions_and_metrics(trained: tuple[Path, Path]) -> None:
    cohort_dir, run = trained
    cohort = Cohort.load(cohort_dir)
    for name in ("config.yaml", "cohort_fingerprint.json", "splits.json", "predictions.csv", "metrics.json"):
        assert (run / name).is_file(), name
    for k in (0, 1):
        for name in ("preprocessing.json", "model.pt", "done.json", "checkpoints/last.ckpt"):
            assert (run / f"fold-{k}" / name).is_file(), (k, name)
    pred = pd.read_csv(run / "predictions.csv", dtype={"subject": str})
    assert list(pred.columns[:5]) == ["subject", "fold", "pattern", "y_true", "p"]
    assert sorted(pred["subject"]) == sorted(cohort.subjects)  # every subject tested exactly once
    assert pred["p"].between(0, 1).all()
    row = pred.set_index("subject")
    assert row.loc["004", "pattern"] == "pet+connectome+clinical"  # t1 cell empty
    assert row.loc["P 002", "pattern"] == "t1+connectome+clinical"  # pet missing
    truth = {c.subject: c.targets["outcome"] for c in cohort}
    assert all(row.loc[s, "y_true"] == y for s, y in truth.items())
    splits = json.loads((run / "splits.json").read_text())
    for s in splits:  # train / val / test disjoint, tests match predictions' fold column
        assert not set(s["train"]) & set(s["val"]) and not set(s["train"]) & set(s["test"])
        assert set(pred.loc[pred["fold"] == s["fold"], "subject"]) == set(s["test"])
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("auroc", "auprc", "balanced_accuracy", "brier", "n", "per_pattern", "robustness"):
        assert key in metrics
    assert metrics["n"] == len(cohort)
    assert sum(m["n"] for m in metrics["per_pattern"].values()) == len(cohort)
    assert set(metrics["robustness"]) >= {"mean", "worst", "per_pattern"}
    assert metrics["auroc"] > 0.7  # the outcome is written into every modality
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["modalities"] == ["t1", "pet", "connectome", "clinical"] and cfg["data"]["folds"] == 2


def test_preprocessing_saved_with_the_run_is_fitted_on_training_subjects(trained: tuple[Path, Path]) -> None:
    cohort_dir, run = trained
    cohort = Cohort.load(cohort_dir)
    split = json.loads((run / "splits.json").read_text())[0]
    prep = json.loads((run / "fold-0" / "preprocessing.json").read_text())
    ages = np.array([cohort[s].load("clinical")[0] for s in split["train"] if cohort[s].has("clinical")])
    assert prep["clinical"]["mean"][0] == pytest.approx(np.nanmean(ages))
    all_ages = np.array([c.load("clinical")[0] for c in cohort])
    assert np.nanmean(all_ages) != pytest.approx(np.nanmean(ages))  # the check can tell them apart


def test_evaluate_and_predict_with_modalities_missing(trained: tuple[Path, Path], tmp_path: Path) -> None:
    cohort_dir, run = trained
    before = json.loads((run / "metrics.json").read_text())
    pattern = next(iter(before["per_pattern"]))
    before["ece"], before["per_pattern"][pattern]["coverage"] = 0.05, 0.9  # as an uncertainty step adds
    (run / "metrics.json").write_text(json.dumps(before))
    again = evaluate_run(run)
    assert again["auroc"] == pytest.approx(before["auroc"])
    assert again["ece"] == 0.05 and again["per_pattern"][pattern]["coverage"] == 0.9  # other steps' keys kept
    # a new cohort that never acquired PET and lacks the connectome for everyone but one subject
    new = tmp_path / "new"
    shutil.copytree(cohort_dir, new)
    spec = yaml.safe_load((new / "cohort.yaml").read_text())
    del spec["modalities"]["pet"]
    (new / "cohort.yaml").write_text(yaml.safe_dump(spec))
    manifest = pd.read_csv(new / "manifest.csv", dtype=str, keep_default_na=False)
    manifest.loc[manifest.index[1:], "connectome"] = ""
    manifest.drop(columns=["pet"]).to_csv(new / "manifest.csv", index=False)
    out = predict_run(run, new, tmp_path / "pred.csv")
    pred = pd.read_csv(out, dtype={"subject": str})
    assert len(pred) == 16 and pred["p"].between(0, 1).all()
    assert not pred["pattern"].str.contains("pet").any()
    assert (pred["pattern"] == "t1+clinical").sum() >= 10
    assert (pred["p_std"] > 0).all()  # two folds = a two-member ensemble
    metrics = evaluate_run(run, new, tmp_path / "eval")
    assert metrics["n"] == 16 and (tmp_path / "eval" / "predictions.csv").is_file()


def test_rerun_resumes_from_last_checkpoint_and_skips_done_folds(tmp_path: Path) -> None:
    cohort = make_training_cohort(tmp_path / "cohort", n=12)
    cfg = _config(cohort, epochs=3, patience=10)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_run(cfg, tmp_path / "run", callbacks=[KillAtSecondEpoch()])
    assert (tmp_path / "run/fold-0/checkpoints/last.ckpt").is_file()
    assert not (tmp_path / "run/fold-0/done.json").exists()
    epochs = EpochsSeen()
    train_run(cfg, tmp_path / "run", callbacks=[epochs])
    assert epochs.seen == [1, 2, 0, 1, 2]  # fold 0 continued at epoch 1; fold 1 trained from scratch
    assert (tmp_path / "run/fold-0/done.json").is_file()
    assert json.loads((tmp_path / "run/fold-0/model.json").read_text())["epochs_trained"] == 3
    first = pd.read_csv(tmp_path / "run/predictions.csv")
    epochs = EpochsSeen()
    train_run(cfg, tmp_path / "run", callbacks=[epochs])
    assert epochs.seen == []  # both folds done: nothing retrained
    pd.testing.assert_frame_equal(first, pd.read_csv(tmp_path / "run/predictions.csv"))
    with pytest.raises(ValueError, match="different config"):
        train_run(cfg.updated(lr=0.5), tmp_path / "run")


def test_training_is_deterministic_on_cpu(tmp_path: Path) -> None:
    cohort = make_training_cohort(tmp_path / "cohort", n=12)
    cfg = _config(cohort, moddrop=0.5)
    a = train_run(cfg, tmp_path / "a")
    b = train_run(cfg, tmp_path / "b")
    pa, pb = pd.read_csv(a / "predictions.csv"), pd.read_csv(b / "predictions.csv")
    np.testing.assert_allclose(pa["p"], pb["p"], rtol=0, atol=1e-6)


def test_multiclass_target_writes_class_probabilities(tmp_path: Path) -> None:
    cohort = make_training_cohort(tmp_path / "cohort", n=12)
    run = train_run(_config(cohort, target="grade", epochs=1), tmp_path / "run")
    pred = pd.read_csv(run / "predictions.csv")
    probs = pred[["p_0", "p_1", "p_2"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert (pred["p"] == probs.max(1)).all() and (pred["y_pred"] == probs.argmax(1)).all()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 12 and 0 <= metrics["brier"] <= 2  # multiclass Brier, summed over classes


def test_survival_target_reports_c_index(tmp_path: Path) -> None:
    cohort = make_training_cohort(tmp_path / "cohort", n=12)
    run = train_run(_config(cohort, target="survival"), tmp_path / "run")
    pred = pd.read_csv(run / "predictions.csv")
    assert {"time", "event", "p"} <= set(pred.columns)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["c_index"] <= 1 and metrics["n"] == 12
    ibs = metrics["integrated_brier"]  # None only when a fold's calibration split holds no event
    assert "integrated_brier" in metrics and (ibs is None or 0 <= ibs <= 1)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_fusion_trains_and_predicts_on_the_hand_made_cohort(fusion: str, trained: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    cohort_dir, _ = trained
    run = train_run(_config(cohort_dir, fusion=fusion, epochs=1, moddrop=0.2), tmp_path / "run")
    pred = pd.read_csv(predict_run(run, cohort_dir, tmp_path / "p.csv"), dtype={"subject": str})
    assert len(pred) == 16 and pred["p"].between(0, 1).all() and pred["p"].notna().all()
    assert pred["pattern"].nunique() >= 4  # the missing patterns of the cohort, each predicted


def test_cli_train_evaluate_predict(trained: tuple[Path, Path], tmp_path: Path) -> None:
    cohort_dir, _ = trained
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"cohort": str(cohort_dir), "target": "outcome", "fusion": "late",
                                      "folds": 3, "epochs": 5, "spacing": 4.0, "model": SMALL_MODEL}))
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", str(config), "--out", str(run), "--fusion", "hemis",
                                 "--folds", "2", "--epochs", "1", "--modalities", "t1,clinical", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["model"]["fusion"], cfg["data"]["folds"], cfg["trainer"]["epochs"], cfg["data"]["modalities"]) == \
        ("hemis", 2, 1, ["t1", "clinical"])
    assert set(pd.read_csv(run / "predictions.csv")["pattern"]) <= {"t1+clinical", "t1", "clinical"}
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["predict", str(run), "--cohort", str(cohort_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 16
    result = runner.invoke(app, ["train", "--cohort", str(cohort_dir), "--target", "outcme", "--out",
                                 str(tmp_path / "bad"), "--folds", "2"])
    assert result.exit_code == 1 and "outcome" in result.output and "Traceback" not in result.output  # did you mean


def test_a_registered_uncertainty_method_is_one_class(tmp_path: Path) -> None:
    """A method registered by subclassing decides how many networks a fold trains; the run saves what it
    fitted post hoc (posthoc.json) from a held-out calibration split, and predict applies it."""
    from fusemed.uncertainty.methods import METHODS, UncertaintyMethod

    class Pair(UncertaintyMethod, name="test-pair"):
        needs_network = True

        def n_networks(self) -> int:
            return 2

    try:
        cohort = make_training_cohort(tmp_path / "cohort", n=20)
        cfg = _config(cohort, epochs=1, calibration_fraction=0.25, uncertainty="test-pair")
        run = train_run(cfg, tmp_path / "run")
        frame = predict_cohort(run, Cohort.load(cohort))
    finally:
        METHODS.pop("test-pair")
    splits = json.loads((run / "splits.json").read_text())
    post = json.loads((run / "posthoc.json").read_text())
    assert post["sources"] == {"0": "calibration", "1": "calibration"}
    for split in splits:
        assert not set(split["calibration"]) & set(split["train"] + split["val"] + split["test"])
        assert len(post["conformal"][str(split["fold"])]["scores"]) == len(split["calibration"])
    assert (run / "fold-0" / "member-1" / "model.pt").is_file()
    assert len(post["oof"]["score"]) == sum(len(s["test"]) for s in splits)
    assert {"conformal_set", "abstain", "epistemic"} <= set(frame.columns) and (frame["epistemic"] > 0).any()


def test_a_subject_only_its_fold_cannot_read_is_refused_before_training_and_a_baseline_scores_it(
        tmp_path: Path) -> None:
    """The one subject with a connectome has nothing else: its fold's network could not read it, so a network
    run stops before anything is written, naming the subject and the ways out; a baseline reads it as missing."""
    cohort = make_training_cohort(tmp_path / "cohort")
    manifest = pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)
    keeper = manifest["connectome"].ne("").idxmax()
    manifest.loc[manifest.index != keeper, "connectome"] = ""
    manifest.loc[keeper, ["t1", "pet", "age", "gcs"]] = ""  # the connectome is all it has
    manifest.to_csv(cohort / "manifest.csv", index=False)
    subject = manifest.loc[keeper, "subject"]
    with pytest.raises(ValueError, match=rf"{subject!r} \(fold \d\) has only \['connectome'\].*"
                                         r"--modalities t1,pet,clinical.*--fusion logistic"):
        train_run(_config(cohort, epochs=1), tmp_path / "net")
    assert not (tmp_path / "net" / "config.yaml").exists()  # refused before any work
    run = train_run(_config(cohort, fusion="logistic"), tmp_path / "baseline")
    pred = pd.read_csv(run / "predictions.csv", dtype={"subject": str})
    assert pred.loc[pred["subject"] == subject, "p"].between(0, 1).all() and len(pred) == 16
    # self-configuration among baselines only has no network to refuse for
    run = train_run(_config(cohort, fusion="auto", search={"candidates": ["logistic", "gbm"]}), tmp_path / "auto")
    assert len(pd.read_csv(run / "predictions.csv")) == 16


def test_a_modality_no_training_subject_of_a_fold_has_is_read_as_missing_there(tmp_path: Path) -> None:
    """At 60 % missing a derived modality may reach a handful of subjects: a fold whose training split has none
    reads it as missing instead of failing the run, and patterns keep naming it."""
    cohort = make_training_cohort(tmp_path / "cohort")
    manifest = pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)
    keeper = manifest["connectome"].ne("").idxmax()
    manifest.loc[manifest.index != keeper, "connectome"] = ""  # one subject has a connectome
    manifest.to_csv(cohort / "manifest.csv", index=False)
    run = train_run(_config(cohort, epochs=1), tmp_path / "run")
    folds = [json.loads((run / f"fold-{k}" / "fold.json").read_text()) for k in range(2)]
    assert all(f["run_modalities"] == ["t1", "pet", "connectome", "clinical"] for f in folds)
    assert any("connectome" not in f["modalities"] for f in folds)  # the fold that tests the one subject
    pred = pd.read_csv(run / "predictions.csv", dtype={"subject": str})
    assert len(pred) == 16 and pred["pattern"].str.contains("connectome").sum() == 1
    again = predict_cohort(run, Cohort.load(cohort))  # each subject by its own fold, that fold's modalities
    both = again.merge(pred, on="subject", suffixes=("", "_oof"))
    np.testing.assert_allclose(both["p"], both["p_oof"], atol=1e-6)
    others = predict_cohort(run, Cohort.load(make_training_cohort(tmp_path / "new", seed=1)))
    assert (others["source"] == "folds").all() and others["pattern"].str.contains("connectome").sum() >= 10
    # self-configuration too: an inner fold without the one subject fits its baselines without the modality
    auto = train_run(_config(cohort, fusion="auto", epochs=1), tmp_path / "auto")
    assert len(pd.read_csv(auto / "predictions.csv")) == 16
    # a new patient with nothing but a connectome: the fold fitted without it is named before any model loads
    new = make_training_cohort(tmp_path / "only", seed=1)
    table = pd.read_csv(new / "manifest.csv", dtype=str, keep_default_na=False)
    table.loc[0, ["t1", "pet", "age", "gcs"]] = ""
    table.to_csv(new / "manifest.csv", index=False)
    blind = [k for k, f in enumerate(folds) if "connectome" not in f["modalities"]]
    with pytest.raises(ValueError, match=re.escape(f"{table.loc[0, 'subject']!r} has only ['connectome'], which "
                                                   f"fold(s) {blind} of this run")):
        predict_cohort(run, Cohort.load(new))
