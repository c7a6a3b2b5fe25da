"""DDP on two CPU processes (gloo): the same train_run, unchanged, with strategy="ddp", devices=2.

Lightning's DDP launcher re-executes the running script for rank 1, so training runs in a small script
(a subprocess), as a user's would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from training_helpers import make_training_cohort

SCRIPT = """
import sys
sys.path[:0] = [{tests!r}, {src!r}]
import torch
torch.set_num_threads(1)
from training_helpers import SMALL_MODEL
from fusemed.training import TrainConfig, train_run

cfg = TrainConfig(cohort={cohort!r}, target="outcome", fusion="concat", folds=2, epochs=2, batch_size=2, spacing=4.0,
                  progress=False, accelerator="cpu", devices=2, strategy="ddp", model=SMALL_MODEL)
train_run(cfg, {run!r})
"""


@pytest.mark.slow  # ~20-40 s: two processes import torch and train two folds
def test_ddp_on_two_cpu_processes_writes_one_complete_run(tmp_path: Path) -> None:
    cohort = make_training_cohort(tmp_path / "cohort", n=12)
    run = tmp_path / "run"
    tests = str(Path(__file__).parent)
    src = str(Path(__file__).parents[1] / "src")
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT.format(tests=tests, src=src, cohort=str(cohort), run=str(run)))
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    assert "Starting with 2 processes" in proc.stderr + proc.stdout
    pred = pd.read_csv(run / "predictions.csv", dtype={"subject": str})
    assert len(pred) == 12 and pred["subject"].is_unique and pred["p"].between(0, 1).all()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 12
    for k in (0, 1):
        assert (run / f"fold-{k}" / "done.json").is_file()
