"""Detection benchmark tables: paired comparisons at a matched operating point are made on the same
patients (seed × subject), the better detector first, with an exact McNemar p and Holm across the table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fusemed.benchmark.detection import paired_frame, summary_frame


def _run(root, detector, seed, detected, point="spec80"):
    run = root / f"{detector}-s{seed}"
    run.mkdir()
    n = len(detected)
    pd.DataFrame({"subject": [f"sub-{i:02d}" for i in range(n)] + ["sub-c1"], "patient": [1] * n + [0],
                  f"detected_at_{point}": [*detected, np.nan]}).to_csv(run / "detections.csv", index=False)
    return SimpleNamespace(run_dir=run, cohort_id="c", fusion=detector, seed=seed)


def test_paired_comparison_is_on_the_same_patients_with_the_better_detector_first(tmp_path):
    cells = []
    for seed in (0, 1):
        cells += [_run(tmp_path, "weak", seed, [1, 0, 0, 0, 0]), _run(tmp_path, "strong", seed, [1, 1, 1, 1, 1]),
                  _run(tmp_path, "never", seed, [np.nan] * 5)]  # its point unreachable: no pair
    frame = paired_frame(cells, ["weak", "strong", "never"], n_boot=200)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row["a"], row["b"], row["n"]) == ("strong", "weak", 10)
    assert row["diff"] == pytest.approx(0.8) and (row["a_only"], row["b_only"]) == (8, 0)
    assert row["p"] == pytest.approx(2 * 0.5 ** 8) and row["ci_low"] > 0  # exact two-sided McNemar
    assert row["p_holm"] == pytest.approx(row["p"])  # one test: Holm changes nothing


def test_holm_runs_across_every_pair_and_ties_give_p_one(tmp_path):
    cells = [_run(tmp_path, name, 0, flags) for name, flags in
             (("a", [1, 1, 0, 0]), ("b", [1, 1, 0, 0]), ("c", [0, 0, 1, 1]))]
    frame = paired_frame(cells, ["a", "b", "c"], n_boot=50).set_index(["a", "b"])
    assert frame.loc[("a", "b"), "p"] == 1.0 and frame.loc[("a", "b"), "diff"] == 0.0
    assert (frame["p_holm"] >= frame["p"]).all() and len(frame) == 3


def test_summary_gives_the_spread_over_seeds_in_the_configured_order():
    frame = pd.DataFrame({"cohort": "c", "detector": ["y", "x", "x"], "seed": [0, 0, 1],
                          "sens_at_spec80": [0.5, 0.2, 0.4]})
    table = summary_frame(frame, ["x", "y"])
    assert table["detector"].tolist() == ["x", "y"] and table["seeds"].tolist() == [2, 1]
    assert table.loc[0, "sens @ spec 0.8"] == "0.30 ± 0.14 [0.20, 0.40]" and table.loc[1, "MRI-negative @ 0.8"] == "–"
