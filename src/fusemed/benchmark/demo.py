"""``run_demo``: the whole pipeline on an embedded default, with zero set-up.

Simulates a small coma cohort (120 subjects, 5 mm voxels, 30 % of each modality missing at random),
trains early fusion, late fusion and an intermediate fusion (hemis: mean and variance of the embeddings of
the present modalities) with MC-dropout uncertainty, temperature scaling and pattern-conditional conformal
sets, then writes the results and the HTML report. Sized to finish in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusemed.benchmark.config import BenchmarkConfig, CohortGrid
from fusemed.benchmark.runner import BenchmarkResult, EventHook, run_benchmark

#: the intermediate fusion the demo compares with the two baselines (it ran with any modality missing in a
#: withdrawn single-seed coma table; benchmarks/coma.yaml is the 3-seed grid that will say more)
INTERMEDIATE = "hemis"


def demo_config(subjects: int = 120, epochs: int = 15, folds: int = 3, **train: Any) -> BenchmarkConfig:
    """The demo's grid: one simulated coma cohort × {early, late, hemis} × MC dropout, and the logistic
    baseline, × one seed."""
    return BenchmarkConfig(
        name="demo",
        cohorts=[CohortGrid(scenario="coma", subjects=subjects, seed=0, missing=[0.3], scheme="mcar",
                            spacing=5.0, sites=2)],
        fusions=["early", "late", INTERMEDIATE],
        baselines=["logistic"],  # the classical baseline beside the fusions (gbm on ~6,000 features costs minutes)
        uncertainty=["mc_dropout"],
        seeds=[0],
        train={"target": "outcome", "folds": folds, "epochs": epochs, "patience": 4, "spacing": 5.0,
               "batch_size": 8, "lr": 3e-3, "calibrate": True, "calibration_fraction": 0.2, "alpha": 0.1,
               "mc_samples": 10, "moddrop": 0.2, **train},
        n_jobs=1,  # in-process: per-epoch progress bars
        threads_per_job=1,  # small 3D convs: a second intra-op thread cost more CPU than it saved here
        n_boot=1000,
    )


def run_demo(out: str | Path = "demo-output", *, on_event: EventHook | None = None,
             config: BenchmarkConfig | None = None) -> BenchmarkResult:
    """Run the demo into ``out`` (resumable: a rerun skips what is done) and return the benchmark result.

    Then ``fusemed advise`` for the patients on the report's cards (which missing exam would most change
    their answer) and the report again, so the cards show it: only those few patients, to stay in minutes.
    """
    config = config or demo_config()
    result = run_benchmark(config, out, on_event=on_event, report=False)
    runs = sorted(Path(out).glob("runs/*/*/run.json"))
    if not runs:
        return result
    advise_card_patients([r.parent for r in runs])
    from fusemed.report import build_report

    result.report = build_report([r.parent for r in runs], Path(out) / "report.html", n_boot=config.n_boot,
                                 figures_dir=Path(out) / "figures")
    return result


def advise_card_patients(runs: list[Path], k: int = 16) -> Path | None:
    """``advice.csv`` in the report's focus run, for the patients its cards show (None when none is missing
    anything or the run fitted nothing post hoc)."""
    from fusemed.advise import advise_cohort
    from fusemed.cohort import Cohort
    from fusemed.report.cards import focus_run, select_cards
    from fusemed.report.runs import load_runs

    focus = focus_run(load_runs(runs))
    if focus is None or not (focus.path / "posthoc.json").is_file() or focus.cohort is None:
        return None
    shown = [card for cards in select_cards(focus).values() for card in cards if card.missing]
    if not shown:
        return None
    cohort = Cohort.load(focus.cohort).subset(dict.fromkeys(card.subject for card in shown))
    advise_cohort(focus.path, cohort, k=k, n_boot=200, out=focus.path / "advice.csv")
    return focus.path / "advice.csv"
