"""The HTML report built from synthetic run folders: every section, figure, number and the CLI."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from report_factory import make_report_cohort, make_run
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.report import build_report, comparison_table, load_runs
from fusemed.report.patterns import missing_rate_figure
from fusemed.report.runs import find_oracle, load_run
from fusemed.run import Run, RunTask

SECTIONS = ["cohort", "comparison", "roc", "reliability", "risk-coverage", "patterns", "coverage", "patients",
            "reading"]
FIGURES = ["availability", "patterns", "roc", "reliability", "risk_coverage", "pattern_heatmap",
           "coverage_heatmap"]


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("report")
    cohort = make_report_cohort(root / "cohort", n=90)
    runs = [
        make_run(root / "runs" / "early", cohort, "early", noise=3.0, uncertainty=False),
        make_run(root / "runs" / "late", cohort, "late", noise=2.5, seed=1),
        make_run(root / "runs" / "attention", cohort, "attention", strength=1.0, noise=0.3, seed=2),
    ]
    return cohort, runs


@pytest.fixture(scope="module")
def report_html(three_runs: tuple[Path, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> str:
    _, runs = three_runs
    out = build_report(runs, tmp_path_factory.mktemp("out") / "report.html", n_boot=300)
    return out.read_text()


def test_report_has_every_section_and_embedded_figure(report_html: str) -> None:
    for section in SECTIONS:
        assert f'id="{section}"' in report_html, section
    for key in FIGURES:
        match = re.search(rf'src="data:image/png;base64,([A-Za-z0-9+/=]+)"[^>]*data-figure="{key}"', report_html)
        assert match, f"figure {key} missing"
        assert base64.b64decode(match.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in report_html and "https://" not in report_html  # opens offline
    assert "before calibration" in report_html  # runs with p_uncal get the before/after diagram
    assert "target <b>survival</b> (survival)" in report_html  # every target kind is summarised


def test_report_table_has_oracle_ci_and_paired_tests(report_html: str) -> None:
    assert "ORACLE" in report_html
    rows = re.findall(r"<tr class=\"[^\"]*\"><td>([^<]+)</td>", report_html)
    assert rows == ["early", "late", "attention", "ORACLE (full information)"]
    attention = re.search(r"<td>attention</td>.*?</tr>", report_html, re.S).group(0)
    assert re.search(r"0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\]", attention)  # AUROC with its CI
    assert "p=" in attention  # paired test against early and late
    assert attention.count('class="delta sig"') == 2  # the much better model beats both baselines


def test_patient_cards_show_the_most_uncertain_and_wrong(report_html: str, three_runs) -> None:
    _, runs = three_runs
    frame = pd.read_csv(runs[2] / "predictions.csv", dtype={"subject": str})
    most_uncertain = frame.sort_values("entropy", ascending=False)["subject"].iloc[0]
    uncertain = report_html.split('class="cards uncertain"')[1].split('class="cards wrong"')[0]
    assert f'data-subject="{most_uncertain}"' in uncertain
    wrong = report_html.split('class="cards wrong"')[1].split("</section>")[0]
    worst = frame.assign(err=(frame["p"] - frame["y_true"]).abs()).sort_values("err")["subject"].iloc[-1]
    assert f'data-subject="{worst}"' in wrong
    assert "epistemic" in uncertain and "conformal set" in uncertain


def test_comparison_numbers_match_sklearn_and_oracle_is_best(three_runs) -> None:
    from sklearn.metrics import roc_auc_score

    cohort, runs = three_runs
    loaded = load_runs(runs)
    table = comparison_table(loaded, find_oracle(cohort), n_boot=200).set_index("run")
    frame = pd.read_csv(runs[1] / "predictions.csv")
    assert table.loc["late", "auroc"] == pytest.approx(roc_auc_score(frame["y_true"], frame["p"]))
    assert table.loc["late", "auroc_low"] < table.loc["late", "auroc"] < table.loc["late", "auroc_high"]
    assert table.loc["ORACLE (full information)", "auroc"] >= table.loc["early", "auroc"]
    covered = [str(y) in s for y, s in zip(frame["y_true"], frame["conformal_set"], strict=True)]
    assert table.loc["late", "coverage"] == pytest.approx(np.mean(covered))
    assert np.isnan(table.loc["early", "coverage"])  # no conformal sets in that run
    assert table.loc["attention", "vs_early_p"] < 0.05 and table.loc["attention", "vs_early_diff"] > 0


def test_missing_rate_figure_needs_several_rates(tmp_path: Path) -> None:
    runs = []
    for rate in (0.0, 0.6):
        cohort = make_report_cohort(tmp_path / f"c{rate}", n=60, seed=int(rate * 10), missing=rate)
        for fusion in ("early", "hemis"):
            runs.append(make_run(tmp_path / f"r{rate}" / fusion, cohort, fusion, uncertainty=False))
    loaded = load_runs(runs)
    assert missing_rate_figure(loaded[:2], n_boot=100) is None
    fig = missing_rate_figure(loaded, n_boot=100)
    assert fig is not None and fig.uri.startswith("data:image/png;base64,")
    assert [r.name for r in loaded][:2] == ["r0.0/early", "r0.0/hemis"]  # duplicate names made unique


def test_lesion_run_is_shown_tolerantly(tmp_path: Path, three_runs) -> None:
    """A detection run as `fusemed.diagnosis` writes it: metrics, detections.csv, per-subject maps and clusters."""
    run, cohort = tmp_path / "lesion-run", tmp_path / "epi-cohort"
    (run / "predictions").mkdir(parents=True)
    (cohort / "truth" / "masks").mkdir(parents=True)
    Run.create(run, "detection", RunTask("lesion", "mask", 2))
    (run / "config.yaml").write_text(f"task: detection\ncohort: {cohort}\nmodel: zscore\n")
    (run / "metrics.json").write_text(json.dumps({"sensitivity": 0.6, "specificity": 0.8, "n_patients": 10,
                                                  "mri_negative": {"sensitivity": 0.25}}))
    pd.DataFrame({"subject": ["p1", "c1"], "patient": [1, 0], "detected": [1, 0]}).to_csv(
        run / "detections.csv", index=False)
    pd.DataFrame({"rank": [1, 2], "size_mm3": [120, 40], "confidence": [0.2, 0.9]}).to_csv(
        run / "predictions" / "p1_clusters.csv", index=False)
    score = np.zeros((8, 8, 8), dtype=np.float32)
    score[3:5, 3:5, 3:5] = 1.0
    for name in ("c1_prob", "p1_prob", "p1_uncertainty"):
        nib.save(nib.Nifti1Image(score, np.eye(4)), str(run / "predictions" / f"{name}.nii.gz"))
    nib.save(nib.Nifti1Image((score > 0).astype(np.uint8), np.eye(4)),
             str(cohort / "truth" / "masks" / "p1_lesion_mask.nii.gz"))
    html = build_report([three_runs[1][0], run], tmp_path / "r.html", n_boot=100).read_text()
    section = html.split('id="lesion"')[1].split("</section>")[0]
    assert "detections.csv" in section and "clusters of 1 subject(s)" in section
    assert section.index("0.900") < section.index("0.200")  # most confident cluster first
    assert "mri_negative.sensitivity" in section and "0.600" in section
    overlays = re.findall(r'data-figure="overlay-([^"]+)"', section)
    assert overlays == ["p1_prob.nii.gz", "c1_prob.nii.gz"]  # the patient (with a reference mask) first
    assert "cyan contour" in section
    assert "sens_at_spec80" in section and "sens_at_spec90" in section  # the columns, even when not computed
    assert 'data-figure="froc"' not in section  # no froc.csv in this run
    pd.DataFrame({"threshold": [0.2, 0.5, 0.8], "sensitivity": [0.9, 0.6, 0.2], "fp_per_patient": [3.0, 1.0, 0.1],
                  "specificity": [0.4, 0.8, 0.95]}).to_csv(run / "froc.csv", index=False)
    html = build_report([three_runs[1][0], run], tmp_path / "r2.html", n_boot=100).read_text()
    assert 'data-figure="froc"' in html.split('id="lesion"')[1]


def test_not_a_run_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="empty-run"):
        load_run(tmp_path / "empty-run")


def test_run_of_an_older_layout_is_refused(tmp_path: Path) -> None:
    """A folder with run files but no run.json (layout 1): refused, not guessed."""
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"sensitivity": 0.5}))
    with pytest.raises(ValueError, match="old-run was written by an older fusemed .*retrain it with `fusemed train`"):
        load_run(run)


def test_cli_report_in_process(three_runs, tmp_path: Path) -> None:
    cohort, runs = three_runs
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(app, ["report", *map(str, runs[:2]), "--out", str(out), "--cohort", str(cohort),
                                      "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "report:" in result.output
    html = out.read_text()
    assert 'data-figure="roc"' in html and "ORACLE" in html
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "nope"), "--out", str(out)])
    assert bad.exit_code == 1 and "not a run" in bad.output and "nope" in bad.output


def test_survival_run_shows_its_c_index_without_binary_curves(tmp_path: Path, three_runs) -> None:
    run = tmp_path / "survival-run"
    run.mkdir()
    Run.create(run, "prognosis", RunTask("survival", "survival", 1))
    pd.DataFrame({"subject": ["a", "b", "c"], "fold": 0, "pattern": "t1+clinical", "y_true": [1, 0, 1],
                  "p": [2.0, -1.0, 0.5], "time": [10.0, 40.0, 20.0], "event": [1, 0, 1]}).to_csv(
        run / "predictions.csv", index=False)
    (run / "metrics.json").write_text(json.dumps({"c_index": 0.812, "c_index_sd": 0.04, "n": 3,
                                                  "c_index_method": "per-fold mean",
                                                  "task": {"kind": "survival", "fusion": "hemis"}}))
    html = build_report([three_runs[1][0], run], tmp_path / "s.html", n_boot=100).read_text()
    row = re.search(r"<td>survival-run</td>.*?</tr>", html, re.S).group(0)
    assert "0.812 ± 0.040" in row  # C-index column: mean ± SD over folds
    assert "C-index: per-fold mean ± SD" in html  # the caption says how it was computed
    survival = load_run(run)
    assert survival.task_kind == "survival" and not survival.binary  # kept out of ROC/calibration curves


def test_patient_cards_go_to_a_run_whose_members_disagree(tmp_path: Path) -> None:
    """A better baseline with one deterministic member (epistemic 0 everywhere) does not get the cards: they
    exist to show how sure a model is, so they go to the best run that has epistemic uncertainty to show."""
    from fusemed.report.cards import focus_run, select_cards
    from fusemed.report.runs import load_run

    cohort = make_report_cohort(tmp_path / "cohort", n=60)
    baseline = make_run(tmp_path / "logistic", cohort, "logistic", strength=1.0, noise=0.2)
    frame = pd.read_csv(baseline / "predictions.csv")
    frame["epistemic"] = 0.0
    frame["aleatoric"] = frame["entropy"]
    frame.to_csv(baseline / "predictions.csv", index=False)
    network = make_run(tmp_path / "hemis", cohort, "hemis", strength=0.6, noise=1.0)
    chosen = focus_run([load_run(baseline), load_run(network)])
    assert chosen is not None and chosen.fusion == "hemis"
    wrong = select_cards(chosen)["wrong"]
    assert wrong and all(card.epistemic > 0 for card in wrong)
