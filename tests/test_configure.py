"""Self-configuration (`fusion: auto`) and classical baselines through the one training pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from training_helpers import make_training_cohort

import fusemed.training.learners as learners
from fusemed.configure import SearchSpace
from fusemed.training import TrainConfig, predict_cohort, train_run


def make_edge_cohort(root: Path, n: int = 200, nodes: int = 20, seed: int = 0) -> Path:
    """Graph-only cohort whose binary label sits in ONE edge weight (3, 7); every other edge is noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        y = int(i % 2)
        a = rng.normal(0.0, 1.0, (nodes, nodes))
        a = (a + a.T) / 2
        a[3, 7] = a[7, 3] = 1.6 * y + rng.normal(0.0, 0.6)
        np.fill_diagonal(a, 0.0)
        np.savez(root / f"g{i}.npz", adjacency=a)
        rows.append({"subject": f"s{i:03d}", "conn": f"g{i}.npz", "y": y})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    spec = {"name": "edge", "modalities": {"conn": {"kind": "graph"}}, "targets": {"y": {"kind": "binary"}}}
    (root / "cohort.yaml").write_text(yaml.safe_dump(spec))
    return root


def test_a_search_space_typo_fails_before_any_cohort_file_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-cohort"  # never created: reading it would raise FileNotFoundError
    with pytest.raises(ValueError, match="did you mean 'logistic'"):
        TrainConfig(cohort=missing, target="y", search={"candidates": ["logisitc", "late"]})
    with pytest.raises(ValueError, match="hemis"):
        TrainConfig(cohort=missing, target="y", fusion="hemsi")
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(cohort=missing, target="y", search={"candidate": ["late"]})


def test_explicit_keys_are_pinned_and_the_rest_left_to_the_plan(tmp_path: Path) -> None:
    config = TrainConfig(cohort=tmp_path, target="y", lr=0.05)
    assert config.fusion == "auto" and config.pinned == ["lr"]
    again = TrainConfig.model_validate(config.model_dump(mode="json"))
    assert again.pinned == ["lr"]  # saved with the run: a resumed run keeps the same plan
    assert SearchSpace().resolve("survival", 40) == (["cox", "rsf", "late", "concat"], 3)
    # tree ensembles leave the default space on a feature vector as long as a connectome's edges, not a named one
    assert SearchSpace().resolve("survival", 200, 54_946) == (["cox", "late", "concat"], 2)
    assert SearchSpace().resolve("binary", 200, 54_946)[0] == ["logistic", "late", "concat"]
    assert SearchSpace(candidates=["rsf", "late"]).resolve("survival", 200, 54_946)[0] == ["rsf", "late"]


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("edge")
    cohort = make_edge_cohort(root / "cohort")
    run = train_run(TrainConfig(cohort=cohort, target="y", folds=3, progress=False, seed=1), root / "run")
    return cohort, run


def test_self_configuration_learns_a_label_that_sits_in_one_edge(edge_run: tuple[Path, Path]) -> None:
    _, run = edge_run
    frame = pd.read_csv(run / "predictions.csv")
    assert sorted(frame["subject"]) == [f"s{i:03d}" for i in range(200)]
    assert roc_auc_score(frame["y_true"], frame["p"]) >= 0.9
    metrics = json.loads((run / "metrics.json").read_text())
    chosen = metrics["configuration"]
    assert sum(chosen["chosen"].values()) == 3
    for k in range(3):  # every trial of every fold is on record, with why the winner won
        trials = pd.read_csv(run / f"fold-{k}" / "trials.csv")
        trials = trials[trials["state"] != "BLEND"]
        assert set(trials["params_candidate"]) == {"logistic", "gbm", "late", "concat"}
        record = json.loads((run / f"fold-{k}" / "fold.json").read_text())["configuration"]
        assert record["chosen"] in record["scores"] and record["fingerprint"]["n"] > 100


def test_predict_reapplies_each_folds_chosen_model(edge_run: tuple[Path, Path]) -> None:
    from fusemed.cohort import Cohort

    cohort, run = edge_run
    frame = predict_cohort(run, Cohort.load(cohort))
    oof = pd.read_csv(run / "predictions.csv", dtype={"subject": str}).set_index("subject")
    assert len(frame) == 200 and np.isfinite(frame["p"]).all()
    # the training cohort: each subject from the fold model that never saw it, as out of fold
    assert frame["source"].str.startswith("fold-").all()
    np.testing.assert_allclose(frame.set_index("subject")["p"], oof.loc[frame["subject"], "p"], atol=1e-6)


def test_baselines_and_the_search_never_fit_on_a_test_subject(tmp_path: Path, monkeypatch) -> None:
    """Every fit (baseline, network, inner-CV trial) sees only its outer fold's training subjects."""
    cohort = make_training_cohort(tmp_path / "cohort", n=24)
    seen: list[tuple[int, set[str]]] = []

    def subjects(dataset) -> set[str]:
        return {dataset[i]["subject"] for i in range(len(dataset))}

    real_baseline, real_deep = learners.fit_baseline, learners.fit_deep

    def spy_baseline(ctx, name, train, seed):
        seen.append((ctx.fold, subjects(train)))
        return real_baseline(ctx, name, train, seed)

    def spy_deep(ctx, train, val, *args, **kw):
        seen.append((ctx.fold, subjects(train) | subjects(val)))
        return real_deep(ctx, train, val, *args, **kw)

    import fusemed.configure.search as search
    import fusemed.training.runner as runner

    for module in (runner, search):
        monkeypatch.setattr(module, "fit_baseline", spy_baseline)
        monkeypatch.setattr(module, "fit_deep", spy_deep)
    config = TrainConfig(cohort=cohort, target="outcome", folds=2, progress=False, epochs=2, spacing=4.0,
                         calibration_fraction=0.2, search={"candidates": ["logistic", "late"], "prune": False})
    run = train_run(config, tmp_path / "run")
    splits = json.loads((run / "splits.json").read_text())
    assert len(seen) >= 2 * 2 * 3  # 2 folds x 2 candidates x 3 inner folds (+ a refit where logistic won)
    for fold, fitted in seen:
        allowed = set(splits[fold]["train"]) | set(splits[fold]["val"])
        assert fitted <= allowed, f"fold {fold} fit on {sorted(fitted - allowed)}"
    frame = pd.read_csv(run / "predictions.csv")
    assert frame["subject"].is_unique and len(frame) == 24


def test_self_configuration_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    cohort = make_edge_cohort(tmp_path / "cohort", n=40, nodes=8)
    config = TrainConfig(cohort=cohort, target="y", folds=2, progress=False, seed=4,
                         search={"candidates": ["logistic", "gbm", "late"]})
    a = train_run(config, tmp_path / "a")
    b = train_run(config, tmp_path / "b")
    assert (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()
    for k in range(2):
        ta, tb = (pd.read_csv(r / f"fold-{k}" / "trials.csv") for r in (a, b))
        pd.testing.assert_frame_equal(ta.drop(columns="duration"), tb.drop(columns="duration"))


@pytest.mark.parametrize("name", ["logistic", "gbm"])
def test_a_baseline_run_has_the_same_contract_as_a_fusion(tmp_path: Path, name: str) -> None:
    cohort = make_training_cohort(tmp_path / "cohort", n=16)
    run = train_run(TrainConfig(cohort=cohort, target="grade", fusion=name, folds=2, progress=False,
                                calibrate=True, calibration_fraction=0.25), tmp_path / "run")
    frame = pd.read_csv(run / "predictions.csv")
    assert {"subject", "fold", "pattern", "y_true", "p", "y_pred", "p_0"} <= set(frame.columns)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"]["fusion"] == name and "balanced_accuracy" in metrics


def test_a_baseline_refuses_an_uncertainty_method_that_needs_a_network(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="classical baseline"):
        TrainConfig(cohort=tmp_path, target="y", fusion="logistic", uncertainty="mc_dropout")


def test_the_report_says_what_self_configuration_chose(edge_run: tuple[Path, Path], tmp_path: Path) -> None:
    from fusemed.report import build_report

    _, run = edge_run
    html = build_report([run], tmp_path / "report.html").read_text()
    chosen = json.loads((run / "metrics.json").read_text())["configuration"]["chosen"]
    assert "auto → " in html and all(name in html for name in chosen)


def test_pruning_stops_networks_but_never_a_classical_baseline(tmp_path: Path, monkeypatch) -> None:
    """Pruning saves network training; a baseline judged on one inner fold was lost to the blend for nothing."""
    import optuna

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)  # the pruner wants every trial
    cohort = make_edge_cohort(tmp_path / "cohort", n=40, nodes=8)
    config = TrainConfig(cohort=cohort, target="y", folds=2, progress=False, epochs=2,
                         search={"candidates": ["logistic", "late", "gbm"], "inner_folds": 2})
    run = train_run(config, tmp_path / "run")
    for k in range(2):
        trials = pd.read_csv(run / f"fold-{k}" / "trials.csv").set_index("params_candidate")
        assert trials.loc["late", "state"] == "PRUNED"
        assert (trials.loc[["logistic", "gbm"], "state"] == "COMPLETE").all()
        assert (trials.loc[["logistic", "gbm"], "user_attrs_inner_folds_run"] == 2).all()


def test_a_survival_blend_weighs_each_candidates_log_risk_by_its_spread() -> None:
    """Two fits each seeing half the signal, one on a 50x wider risk scale: an equal average of raw log-risks
    would be the wide one alone; scaled by their inner spread, the blend beats both."""
    from fusemed.configure.search import best_blend, inner_score

    rng = np.random.default_rng(0)
    n = 400
    s1, s2 = rng.normal(size=n), rng.normal(size=n)
    time = rng.exponential(np.exp(-(s1 + s2)))
    y = np.c_[time, np.ones(n)]
    folds = np.arange(n) % 2
    oof = {"cox": (y, (50 * s1 + 3.0 * folds)[:, None], folds),  # each inner fit has its own offset
           "concat": (y, s2[:, None], folds)}
    single = {name: inner_score("survival", "auto", y, out[1], folds)[0] for name, out in oof.items()}
    found = best_blend("survival", "auto", oof, ["cox", "concat"], max(single.values()))
    assert found is not None
    names, score, weights = found
    assert names == ["cox", "concat"] and score > max(single.values()) + 0.05
    assert weights[1] / weights[0] == pytest.approx(50, rel=0.1)


def test_a_survival_blend_scores_a_new_patient_as_its_outer_fold(tmp_path: Path, monkeypatch) -> None:
    """The blend's weights are fixed when it is chosen and saved in fold.json, so predict reproduces the
    out-of-fold log-risks exactly."""
    import fusemed.configure.search as search
    from fusemed.cohort import Cohort

    real = search.best_blend
    monkeypatch.setattr(search, "best_blend", lambda kind, metric, oof, ranked, best:
                        real(kind, metric, oof, ranked, -np.inf))  # accept the blend whatever it scores
    cohort = make_training_cohort(tmp_path / "cohort", n=24)
    config = TrainConfig(cohort=cohort, target="survival", folds=2, progress=False, epochs=2, spacing=4.0,
                         search={"candidates": ["cox", "concat"], "inner_folds": 2, "prune": False})
    run = train_run(config, tmp_path / "run")
    for k in range(2):
        entry = json.loads((run / f"fold-{k}" / "fold.json").read_text())
        assert entry["configuration"]["chosen"] == "concat + cox"
        assert entry["predictor"]["kind"] == "blend" and all(w > 0 for w in entry["predictor"]["weights"])
    frame = predict_cohort(run, Cohort.load(cohort)).set_index("subject")
    oof = pd.read_csv(run / "predictions.csv", dtype={"subject": str}).set_index("subject")
    np.testing.assert_allclose(frame["p"], oof.loc[frame.index, "p"], atol=1e-6)
