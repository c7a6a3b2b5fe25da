"""Both oracles in tables: full information vs observed data, overall and per missing pattern; oracles are
shown beside the models but never tested (outside the Holm family)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_factory import make_report_cohort, make_run
from sklearn.metrics import roc_auc_score

from fusemed.benchmark.paired import versus_best_baseline
from fusemed.report.oracle import ORACLES, share
from fusemed.report.patterns import pattern_table
from fusemed.report.runs import find_oracle, load_run, read_predictions
from fusemed.report.table import comparison_table


@pytest.fixture(scope="module")
def cohort_and_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("oracle")
    cohort = make_report_cohort(root / "cohort", n=120, missing=0.5)
    truth = pd.read_csv(cohort / "truth" / "oracle.csv", dtype={"subject": str})
    # an observed-data oracle: the full one for complete subjects, blurred towards 0.5 for the others
    manifest = pd.read_csv(cohort / "manifest.csv", dtype={"subject": str})
    complete = manifest[["t1", "pet"]].notna().all(axis=1).to_numpy()
    truth["p_observed"] = np.where(complete, truth["p_outcome"], 0.5 + 0.3 * (truth["p_outcome"] - 0.5))
    truth["p_observed"] += np.where(complete, 0.0, np.random.default_rng(1).normal(0, 0.2, len(truth)))
    truth["p_observed"] = truth["p_observed"].clip(0.01, 0.99)
    truth.to_csv(cohort / "truth" / "oracle.csv", index=False)
    run = make_run(root / "runs" / "late", cohort, "late", noise=1.0)
    return cohort, run


def test_both_oracles_are_rows_with_clear_labels(cohort_and_run):
    cohort, run = cohort_and_run
    truth = find_oracle(cohort)
    table = comparison_table([load_run(run)], truth, n_boot=100).set_index("run")
    full, observed = ORACLES["p_outcome"], ORACLES["p_observed"]
    assert full == "ORACLE (full information)" and observed == "ORACLE (observed data)"
    y = read_predictions(run / "predictions.csv").merge(truth, on="subject")
    assert table.loc[observed, "auroc"] == pytest.approx(roc_auc_score(y["y_true"], y["p_observed"]))
    assert table.loc[full, "auroc"] > table.loc[observed, "auroc"]


def test_pattern_share_uses_the_observed_oracle_on_that_pattern(cohort_and_run):
    cohort, run = cohort_and_run
    truth = find_oracle(cohort)
    table = pattern_table([load_run(run)], oracle=truth)
    frame = load_run(run).labelled().merge(truth, on="subject")
    assert table["oracle_auroc"].notna().sum() >= 2
    for _, row in table.dropna(subset=["oracle_auroc"]).iterrows():
        group = frame[frame["pattern"] == row["pattern"]]
        assert row["oracle_auroc"] == pytest.approx(roc_auc_score(group["y_true"], group["p_observed"]))
        assert row["oracle_share"] == pytest.approx((row["auroc"] - 0.5) / (row["oracle_auroc"] - 0.5))
    assert pattern_table([load_run(run)])["oracle_share"].isna().all()  # no truth, no share


def test_share_is_undefined_without_a_margin():
    assert share(0.75, 1.0) == pytest.approx(0.5)
    assert np.isnan(share(0.7, 0.5)) and np.isnan(share(0.7, 0.45))


def test_oracles_are_references_not_hypotheses():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 150)
    frames = {name: pd.DataFrame({"subject": [f"s{i}" for i in range(150)], "y_true": y,
                                  "p": y * strength + rng.normal(0, 1, 150)})
              for name, strength in (("logistic", 0.5), ("model", 0.8), ("ORACLE (full information)", 3.0))}
    runs = {(name, 0): f for name, f in frames.items()}
    tested = versus_best_baseline(runs, "binary", ["logistic"], n_boot=200).set_index("model")
    ref = versus_best_baseline(runs, "binary", ["logistic"], n_boot=200,
                               references=("ORACLE (full information)",)).set_index("model")
    oracle = ref.loc["ORACLE (full information)"]
    assert np.isnan(oracle["p"]) and np.isfinite(oracle["diff"])
    assert ref.loc["model", "p_holm"] <= tested.loc["model", "p_holm"]  # one test fewer in the family


def test_a_pattern_whose_conformal_threshold_was_borrowed_says_in_how_many_folds():
    """Mondrian coverage per pattern holds only where the pattern had its own calibration subjects."""
    from fusemed.report.patterns import borrowed_folds
    from fusemed.report.runs import RunData

    groups = [{"pet": {"fallback": "4 calibration subjects < 9: merged with the patterns of 1 present modalities"},
               "pet+t1": {"fallback": ""}},
              {"pet": {"fallback": ""}, "pet+t1": {"fallback": ""}}]
    run = RunData(Path("."), "r", None, metrics={"uncertainty": {"folds": [{"groups": g} for g in groups]}})
    assert borrowed_folds(run, "pet") == (1, 2)
    assert borrowed_folds(run, "pet+t1") == (0, 2)
    assert borrowed_folds(RunData(Path("."), "r", None), "pet") == (0, 0)  # no conformal sets: nothing to say
