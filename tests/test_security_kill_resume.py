"""Issue 13 item 5: a run killed mid-fold (SIGKILL, a real process kill) and resumed gives byte-identical
predictions.csv to an uninterrupted run with the same seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from training_helpers import make_training_cohort

SCRIPT = r'''
import os, signal, sys
import lightning as L
import torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from training_helpers import SMALL_MODEL
from fusemed.training import TrainConfig, train_run

class Kill(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 2 and "fold-0" in str(trainer.default_root_dir):
            os.kill(os.getpid(), signal.SIGKILL)

cfg = TrainConfig(cohort={cohort!r}, target="outcome", fusion="concat", folds=2, epochs=4, patience=10,
                  batch_size=3, spacing=4.0, progress=False, seed=5, moddrop=0.3, model=SMALL_MODEL)
train_run(cfg, sys.argv[1], callbacks=[Kill()] if sys.argv[2] == "kill" else [])
'''


def _run(script: Path, out: Path, mode: str) -> subprocess.CompletedProcess:
    src = Path(__file__).parents[1] / "src"
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, str(script), str(out), mode], env=env, capture_output=True, text=True,
                          timeout=300)


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    cohort = make_training_cohort(tmp_path / "cohort", n=12)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), cohort=str(cohort)))
    straight = _run(script, tmp_path / "straight", "plain")
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = _run(script, tmp_path / "resumed", "kill")
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL mid-fold 0
    assert (tmp_path / "resumed/fold-0/checkpoints/last.ckpt").is_file()
    assert not (tmp_path / "resumed/predictions.csv").exists()
    resumed = _run(script, tmp_path / "resumed", "plain")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "resumed/predictions.csv").read_bytes() == (tmp_path / "straight/predictions.csv").read_bytes()
    logs = [pd.read_csv(tmp_path / run / "fold-0/logs/version_0/metrics.csv") for run in ("straight", "resumed")]
    epochs = [sorted(set(frame["epoch"].dropna().astype(int))) for frame in logs]
    assert epochs[0] == epochs[1] == [0, 1, 2, 3]  # pre-kill epochs kept, resumed ones appended
