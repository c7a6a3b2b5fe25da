"""`fusemed advise`: an exam that decides the outcome is ranked first, one that carries nothing is worth ≈ 0,
the advice is the same for the same seed, and a run without saved calibration is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fusemed.advise import COLUMNS, advise_cohort
from fusemed.cohort import Cohort
from fusemed.training import TrainConfig, predict_cohort, train_run


def three_exam_cohort(root: Path, n: int, seed: int) -> Path:
    """``exam`` (always present) carries a little of the outcome, ``decisive`` nearly all of it, ``noise``
    none; ``decisive`` and ``noise`` are each missing for a third of the subjects."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.7 * x[:, 0] + 4.0 * x[:, 1])))).astype(int)
    frame = pd.DataFrame({"subject": [f"s{seed}-{i:04d}" for i in range(n)], "x0": x[:, 0], "x1": x[:, 1],
                          "x2": x[:, 2], "outcome": y})
    frame.loc[rng.random(n) < 1 / 3, "x1"] = np.nan
    frame.loc[rng.random(n) < 1 / 3, "x2"] = np.nan
    root.mkdir(parents=True)
    frame.to_csv(root / "manifest.csv", index=False)
    spec = {"name": root.name, "modalities": {"exam": {"kind": "tabular", "columns": ["x0"]},
                                              "decisive": {"kind": "tabular", "columns": ["x1"]},
                                              "noise": {"kind": "tabular", "columns": ["x2"]}},
            "targets": {"outcome": {"kind": "binary"}}}
    (root / "cohort.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def _config(cohort: Path, **extra) -> TrainConfig:
    return TrainConfig(cohort=cohort, target="outcome", fusion="logistic", folds=3, progress=False, seed=0, **extra)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("advise")
    cohort = three_exam_cohort(root / "train", 400, seed=0)
    return cohort, train_run(_config(cohort, calibrate=True), root / "run")


@pytest.fixture(scope="module")
def advice(trained) -> pd.DataFrame:
    cohort, run = trained
    return advise_cohort(run, cohort, k=16, seed=0, n_boot=200)


def test_one_row_per_missing_modality_ranked_within_subject(trained, advice: pd.DataFrame) -> None:
    cohort, _ = trained
    loaded = Cohort.load(cohort)
    missing = {(c.subject, m) for c in loaded for m in ("exam", "decisive", "noise") if not c.has(m)}
    assert list(advice.columns) == COLUMNS
    assert set(zip(advice["subject"], advice["modality"], strict=True)) == missing
    for _, rows in advice.groupby("subject"):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert rows["gain"].is_monotonic_decreasing
    assert (advice["gain_low"] <= advice["gain"] + 1e-12).all()
    assert (advice["gain"] <= advice["gain_high"] + 1e-12).all()
    assert advice[["p_singleton", "p_flip"]].stack().between(0, 1).all()
    assert (advice["source"].str.startswith("fold-")).all()  # the training cohort: out-of-fold models only


def test_the_answer_now_is_what_predict_says(trained, advice: pd.DataFrame) -> None:
    cohort, run = trained
    predicted = predict_cohort(run, Cohort.load(cohort)).set_index("subject")
    now = advice.drop_duplicates("subject").set_index("subject")
    np.testing.assert_allclose(now["entropy_now"], predicted.loc[now.index, "entropy"], atol=1e-9)
    assert (now["abstain_now"].astype(bool) == predicted.loc[now.index, "abstain"].astype(bool)).all()


def test_an_exam_without_outcome_information_is_worth_nothing_and_the_decisive_one_comes_first(
        advice: pd.DataFrame) -> None:
    noise = advice[advice["modality"] == "noise"]
    decisive = advice[advice["modality"] == "decisive"]
    # per patient the model's own response to the pattern (a chance coefficient on noise's missing
    # indicator) remains; on average over patients acquiring noise tells nothing
    assert abs(noise["gain"].mean()) < 0.03 and noise["p_flip"].mean() < 0.15
    assert decisive["gain"].mean() > 0.25 and decisive["p_flip"].mean() > 0.3
    both = advice.groupby("subject").filter(lambda rows: len(rows) == 2)
    assert len(both) >= 20
    first = both[both["rank"] == 1]
    assert (first["modality"] == "decisive").mean() >= 0.95


def test_the_same_seed_gives_the_same_advice_and_a_patient_does_not_depend_on_the_others(trained,
                                                                                        advice: pd.DataFrame) -> None:
    cohort, run = trained
    again = advise_cohort(run, cohort, k=16, seed=0, n_boot=200)
    pd.testing.assert_frame_equal(again, advice)
    other = advise_cohort(run, cohort, k=16, seed=1, n_boot=200)
    assert not np.allclose(other["gain_low"], advice["gain_low"])  # the seed drives the bootstrap
    one = advice["subject"].iloc[0]
    alone = advise_cohort(run, Cohort.load(cohort).subset([one]), donors=cohort, k=16, seed=0, n_boot=200)
    mine = advice[advice["subject"] == one].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone[["modality", "gain", "gain_low", "p_singleton"]],
                                  mine[["modality", "gain", "gain_low", "p_singleton"]])


def test_new_patients_get_every_fold_and_complete_ones_get_no_row(trained, tmp_path: Path) -> None:
    cohort, run = trained
    new = three_exam_cohort(tmp_path / "new", 30, seed=5)
    advice = advise_cohort(run, new, donors=cohort, k=8, seed=0, n_boot=50)
    loaded = Cohort.load(new)
    incomplete = {c.subject for c in loaded if not all(c.has(m) for m in ("exam", "decisive", "noise"))}
    assert set(advice["subject"]) == incomplete and (advice["source"] == "folds").all()


def test_a_run_without_saved_calibration_is_refused(trained, tmp_path: Path) -> None:
    from fusemed.cli.main import app

    cohort, _ = trained
    bare = train_run(_config(cohort), tmp_path / "bare")
    assert not (bare / "posthoc.json").exists()
    with pytest.raises(ValueError, match="retrain with --calibrate or an uncertainty method"):
        advise_cohort(bare, cohort)
    result = CliRunner().invoke(app, ["advise", str(bare), "--cohort", str(cohort), "--out", str(tmp_path / "a.csv")])
    assert result.exit_code == 1 and "--calibrate" in result.output


def test_the_report_shows_the_ranking_on_the_cards_and_which_exam_most_often_comes_first(
        trained, advice: pd.DataFrame, tmp_path: Path) -> None:
    import shutil

    from fusemed.report import build_report

    _, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("fold-*"))
    html = build_report([copy], tmp_path / "plain.html", n_boot=100).read_text()
    assert "Which exam next?" not in html and "which exam next:" not in html
    advice.to_csv(copy / "advice.csv", index=False)
    html = build_report([copy], tmp_path / "advised.html", n_boot=100).read_text()
    assert 'id="which-exam"' in html and "which exam next:" in html
    table = html.split('id="which-exam"')[1].split("</table>")[0]
    assert table.index("<td>decisive</td>") < table.index("<td>noise</td>")  # most often first, on top
    raising = advice.assign(gain=-advice["gain"].abs() - 0.05)  # exams expected to raise the entropy
    raising.to_csv(copy / "advice.csv", index=False)
    html = build_report([copy], tmp_path / "signed.html", n_boot=100).read_text()
    assert "−-" not in html and "entropy +0." in html and "entropy -0." not in html  # signed once


def test_an_advise_grid_trains_on_hidden_copies_and_reveals_from_the_complete_cohort(tmp_path: Path) -> None:
    from fusemed.benchmark import BenchmarkConfig, plan

    config = BenchmarkConfig.model_validate({
        "name": "a", "cohorts": [{"scenario": "coma", "subjects": 30, "seed": 1, "missing": [0.0],
                                  "advise": {"hide": 0.3, "schemes": ["mcar", "mnar"], "donors": 4}}],
        "fusions": ["late"], "baselines": ["logistic"], "seeds": [0]})
    jobs, cells = plan(config, tmp_path)
    complete = tmp_path / "cohorts" / "coma-n30-mcar00-s1"
    assert [j.cohort_id for j in jobs] == ["coma-n30-mcar00-s1", "coma-n30-mcar00-s1-hide30mcar",
                                           "coma-n30-mcar00-s1-hide30mnar"]
    assert [j.source.folder if j.source else None for j in jobs] == [None, complete, complete]
    assert len(cells) == 4 and all(c.reveal_dir == complete and c.advise.donors == 4 for c in cells)
    assert {c.cohort_dir.name for c in cells} == {"coma-n30-mcar00-s1-hide30mcar", "coma-n30-mcar00-s1-hide30mnar"}
    with pytest.raises(ValueError, match="complete simulated cohort"):
        BenchmarkConfig.model_validate({"name": "b", "cohorts": [{"missing": [0.3], "advise": {}}]})


def test_hiding_leaves_out_what_the_simulator_would_have_and_keeps_the_images_of_the_complete_cohort(
        tmp_path: Path) -> None:
    from fusemed.simulate import SimulationConfig, simulate_cohort
    from fusemed.simulate.hide import hide_modalities

    options = {"n_subjects": 8, "seed": 4, "spacing": 8.0}
    full = simulate_cohort("coma", tmp_path / "full", **options)
    direct = simulate_cohort("coma", tmp_path / "direct", missing=0.4, missing_scheme="mnar", **options)
    hidden = hide_modalities(full, tmp_path / "hidden", SimulationConfig(scenario="coma", missing=0.4,
                                                                          missing_scheme="mnar", **options))
    got, want = Cohort.load(hidden), Cohort.load(direct)
    assert [c.pattern for c in got] == [c.pattern for c in want] and any(c.pattern != "" for c in got)
    case = next(c for c in got if c.has("pet"))
    assert case.path("pet").resolve().is_relative_to(full.resolve())  # no image copied


@pytest.mark.parametrize("kind, options", [
    ("binary", {"fusion": "concat", "uncertainty": "mc_dropout", "mc_samples": 4, "epochs": 4, "batch_size": 32,
                "model": {"tabular_encoder": "linear", "dropout": 0.2}}),
    ("multiclass", {"fusion": "logistic", "calibrate": True}),
])
def test_networks_with_members_and_multiclass_targets_go_through_the_same_path(tmp_path: Path, kind: str,
                                                                                options: dict) -> None:
    cohort = three_exam_cohort(tmp_path / "c", 150, seed=2)
    if kind == "multiclass":  # three classes cut from the decisive exam
        frame = pd.read_csv(cohort / "manifest.csv")
        frame["outcome"] = np.digitize(frame["x1"].fillna(0) + 0.3 * frame["x0"], [-0.5, 0.5])
        frame.to_csv(cohort / "manifest.csv", index=False)
        spec = yaml.safe_load((cohort / "cohort.yaml").read_text())
        spec["targets"]["outcome"] = {"kind": "multiclass"}
        (cohort / "cohort.yaml").write_text(yaml.safe_dump(spec))
    run = train_run(TrainConfig(cohort=cohort, target="outcome", folds=3, progress=False, seed=0, **options),
                    tmp_path / "run")
    advice = advise_cohort(run, cohort, k=6, seed=0, n_boot=50)
    assert len(advice) > 0 and advice[["gain", "p_singleton", "p_flip"]].notna().all().all()
    mine = advice[advice["subject"] == advice["subject"].iloc[0]]
    predicted = predict_cohort(run, Cohort.load(cohort).subset([mine["subject"].iloc[0]])).iloc[0]
    assert mine["decision_now"].iloc[0] == (predicted["y_pred"] if kind == "multiclass" else int(predicted["p"] >= 0.5))


def test_the_committed_advise_tables_are_regenerated_byte_for_byte(tmp_path: Path) -> None:
    import shutil

    from fusemed.cli.main import app

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    generated = ("results.md", "results.csv", "results_paired.csv", "results_patterns.csv", "results_advise.csv")
    copy = tmp_path / "advise"
    shutil.copytree(benchmarks / "advise", copy, ignore=shutil.ignore_patterns(*generated))
    result = CliRunner().invoke(app, ["benchmark", str(benchmarks / "advise.yaml"), "--out", str(copy),
                                      "--collect-only", "--no-report", "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    for name in generated:
        assert (copy / name).read_bytes() == (benchmarks / "advise" / name).read_bytes(), name
    assert "Spearman ≥ 0.5 met" in (copy / "results.md").read_text()
