"""`fusemed benchmark`: the grid, resumability (a completed cell is skipped), results files, the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from report_factory import stub_simulate, stub_train
from typer.testing import CliRunner

from fusemed.benchmark import BenchmarkConfig, plan, run_benchmark


def _config(**extra) -> BenchmarkConfig:
    return BenchmarkConfig.model_validate({
        "name": "tiny", "cohorts": [{"scenario": "coma", "subjects": 50, "missing": [0.0, 0.5]}],
        "fusions": ["early", "late", "hemis"], "uncertainty": ["ensemble"], "seeds": [0], "n_boot": 200,
        "baselines": [], **extra})


def _calls(out: Path) -> list[str]:
    log = out / "runs" / "calls.log"
    return log.read_text().split() if log.is_file() else []


def test_grid_expands_cohorts_fusions_uncertainty_and_seeds(tmp_path: Path) -> None:
    config = _config(uncertainty=["none", "ensemble"], seeds=[0, 1])
    jobs, cells = plan(config, tmp_path)
    assert [j.cohort_id for j in jobs] == ["coma-n50-mcar00-s0", "coma-n50-mcar50-s0"]
    assert len(cells) == 2 * 3 * 2 * 2
    assert cells[0].run_dir == tmp_path / "runs" / "coma-n50-mcar00-s0" / "early-none-s0"
    with pytest.raises(ValueError, match="listed twice"):
        plan(_config(cohorts=[{"missing": 0.3}, {"missing": 0.3}]), tmp_path)


def test_every_grid_holds_the_classical_baselines_by_default(tmp_path: Path) -> None:
    config = BenchmarkConfig.model_validate({
        "cohorts": [{"scenario": "coma", "missing": [0.0]}], "fusions": ["late"], "uncertainty": ["mc_dropout"],
        "seeds": [0, 1], "train": {"target": "outcome", "mc_samples": 5}})
    _, cells = plan(config, tmp_path)
    baselines = [c for c in cells if c.fusion in ("logistic", "gbm", "cox", "rsf")]
    assert sorted(c.run_dir.name for c in baselines) == sorted(
        f"{b}-none-s{s}" for b in ("logistic", "gbm", "cox", "rsf") for s in (0, 1))
    assert all(c.uncertainty == "none" and "mc_samples" not in c.train for c in baselines)
    with pytest.raises(ValueError, match="did you mean 'logistic'"):
        BenchmarkConfig.model_validate({"cohorts": [{"missing": 0.0}], "baselines": ["logisitc"]})


def test_benchmark_is_resumable_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    first = run_benchmark(_config(), out, train_fn=stub_train, simulate_fn=stub_simulate)
    assert len(first.trained) == 6 and not first.skipped and not first.failed
    assert len(_calls(out)) == 6

    # a finished cell is skipped; a cell whose metrics.json is gone (interrupted) is trained again
    (out / "runs" / "coma-n50-mcar50-s0" / "hemis-ensemble-s0" / "metrics.json").unlink()
    second = run_benchmark(_config(), out, train_fn=stub_train, simulate_fn=stub_simulate)
    assert second.trained == ["coma-n50-mcar50-s0/hemis-ensemble-s0"]
    assert len(second.skipped) == 5
    assert _calls(out)[6:] == ["coma-n50-mcar50-s0/hemis-ensemble-s0"]

    results = pd.read_csv(out / "results.csv")
    assert sorted(results["run"].unique()) == ["ORACLE (full information)", "early-ensemble-s0", "hemis-ensemble-s0",
                                               "late-ensemble-s0"]
    assert results.groupby("cohort").size().tolist() == [4, 4]  # 3 cells + the oracle per cohort
    hemis = results[(results["run"] == "hemis-ensemble-s0")].iloc[0]
    assert hemis["auroc_low"] < hemis["auroc"] < hemis["auroc_high"] and pd.notna(hemis["vs_early_p"])
    md = (out / "results.md").read_text()
    assert "AUROC [95 % CI]" in md and "**ORACLE (full information)**" in md
    assert "Conformal coverage per missing-modality" in md
    assert "CPU cores" in md  # the machine is named
    html = second.report.read_text()
    assert 'data-figure="missing_rate"' in html  # the grid spans two missing rates


def test_failing_cell_is_reported_and_the_rest_still_run(tmp_path: Path) -> None:
    def train(cell):  # noqa: ANN001, ANN202
        if cell.fusion == "late":
            raise RuntimeError("out of memory")
        return stub_train(cell)

    result = run_benchmark(_config(cohorts=[{"subjects": 50, "missing": 0.2}]), tmp_path, train_fn=train,
                           simulate_fn=stub_simulate, report=False)
    assert list(result.failed) == ["coma-n50-mcar20-s0/late-ensemble-s0"]
    assert "out of memory" in (tmp_path / "results.md").read_text()
    assert len(result.trained) == 2


def test_cli_benchmark_runs_cells_in_a_process_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusemed.benchmark.runner as runner
    from fusemed.cli.main import app

    monkeypatch.setattr(runner, "train_cell", stub_train)
    monkeypatch.setattr(runner, "simulate_job", stub_simulate)
    config = tmp_path / "b.yaml"
    config.write_text(yaml.safe_dump({"name": "pool", "cohorts": [{"missing": 0.3}], "fusions": ["early", "late"],
                                      "n_jobs": 2, "n_boot": 200}))
    result = CliRunner().invoke(app, ["benchmark", str(config), "--out", str(tmp_path / "o"), "--no-report"])
    assert result.exit_code == 0, result.output
    # the classical baselines join every grid; cox cannot predict the binary target, so it is left out
    assert sorted(_calls(tmp_path / "o")) == [f"coma-n200-mcar30-s0/{m}-none-s0"
                                              for m in ("early", "gbm", "late", "logistic")]
    assert "results.md" in result.output
    assert "Against the best classical baseline" in (tmp_path / "o" / "results.md").read_text()


def test_cli_demo_prints_results_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fusemed demo` wiring (simulation and training stubbed: the real demo is `make demo`)."""
    import fusemed.benchmark.runner as runner
    from fusemed.benchmark.demo import INTERMEDIATE, demo_config
    from fusemed.cli.main import app

    monkeypatch.setattr(runner, "train_cell", stub_train)
    monkeypatch.setattr(runner, "simulate_job", stub_simulate)
    config = demo_config()
    assert config.fusions == ["early", "late", INTERMEDIATE] and config.train["calibrate"]
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "report.html").is_file() and "report:" in result.output
    assert "ORACLE" in result.output and INTERMEDIATE in result.output
