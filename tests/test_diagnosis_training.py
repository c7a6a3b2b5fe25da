"""Detectors train on the shared Lightning stack: a killed training resumes where it stopped (to the same
weights on CPU), a detection run resumes when rerun, and the accelerator reaches the detector."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import pandas as pd
import pytest
import torch
from diagnosis_synth import CENTRES, cohort, make_case
from training_helpers import EpochsSeen, KillAtSecondEpoch
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import CohortSpec, write_cohort
from fusemed.diagnosis import get_detector, train_detector
from fusemed.training.config import DeviceConfig
from fusemed.training.fit import precision

QUICK = {
    "unet": {"epochs": 3, "patch": 16, "samples_per_case": 2, "channels": [4, 8], "mc_samples": 1},
    "ae": {"patch": 16, "channels": [8, 16], "epochs": 3, "patches_per_epoch": 64, "holdout": 0.4},
    "siamese-ocsvm": {"epochs": 3, "pairs_per_epoch": 128, "samples_per_parcel": 40, "holdout": 0.4},
}
CPU = {"accelerator": "cpu", "progress": False}


@pytest.fixture(scope="module")
def cases():
    return cohort(n_controls=6, n_patients=4, seed=3)


@pytest.mark.parametrize("name", sorted(QUICK))
def test_killed_detector_training_resumes_to_the_weights_of_an_uninterrupted_one(cases, name, tmp_path):
    def detector():
        return get_detector(name)(registration="none", trainer=CPU, **QUICK[name])

    straight = detector().fit(cases, workdir=tmp_path / "straight")
    with pytest.raises(RuntimeError, match="simulated kill"):
        detector().fit(cases, workdir=tmp_path / "killed", callbacks=[KillAtSecondEpoch()])
    assert (tmp_path / "killed/net/checkpoints/last.ckpt").is_file()
    epochs = EpochsSeen()
    resumed = detector().fit(cases, workdir=tmp_path / "killed", callbacks=[epochs])
    assert epochs.seen == [1, 2]  # continued at epoch 1, not 0
    for key, value in straight.net_.state_dict().items():
        torch.testing.assert_close(resumed.net_.state_dict()[key], value, rtol=0, atol=0, msg=key)
    log = pd.read_csv(tmp_path / "killed/net/logs/version_0/metrics.csv")
    assert sorted(log["epoch"].dropna().astype(int).unique()) == [0, 1, 2]  # the pre-kill epoch is kept


def test_surface_detector_trains_on_the_shared_stack(tmp_path):
    import numpy as np

    from fusemed.models.mesh import load_mesh

    mesh = load_mesh("fsaverage5")
    rng = np.random.default_rng(0)
    subjects = []
    for i in range(6):
        feats = rng.normal(size=(mesh.n_vertices, 2)).astype(np.float32)
        labels = np.zeros(mesh.n_vertices, np.int8)
        if i >= 3:
            labels = (np.linalg.norm(mesh.coords - mesh.coords[1000 + 37 * i], axis=1) < 12).astype(np.int8)
            feats[labels > 0] += 3.0
        case = make_case(f"sub-{i}", i)
        case.surface, case.vertex_labels, case.label = feats, labels, int(i >= 3)
        subjects.append(case)
    det = get_detector("surface-gnn")(trainer=CPU, epochs=2, mc_samples=1).fit(subjects, workdir=tmp_path)
    meta = json.loads((tmp_path / "net/model.json").read_text())
    assert meta["epochs_trained"] == 2
    assert det.predict(subjects[4]).prob.shape == (mesh.n_vertices,)


def _write_cohort(root: Path, n: int = 10) -> Path:
    rows = []
    for i in range(n):
        patient = i >= n // 2
        s = f"sub-{i:03d}"
        case = make_case(s, i, lesion_at=CENTRES[i % 4] if patient else None, amplitude=2.0)
        (root / s).mkdir(parents=True)
        row = {"subject": s, "diagnosis": int(patient)}
        for m, img in {**case.volumes, "lesion": case.lesion}.items():
            nib.save(img, root / s / f"{m}.nii.gz")
            row[m] = f"{s}/{m}.nii.gz"
        rows.append(row)
    spec = CohortSpec.model_validate({
        "name": "tiny-lesions",
        "modalities": {m: {"kind": "volume"} for m in ("t1", "flair", "pet")},
        "targets": {"diagnosis": {"kind": "binary"}, "lesion": {"kind": "mask", "reference": "t1"}}})
    write_cohort(root, spec, pd.DataFrame(rows))
    return root


@pytest.fixture(scope="module")
def lesion_cohort(tmp_path_factory) -> Path:
    return _write_cohort(tmp_path_factory.mktemp("lesions"))


def test_rerunning_a_killed_detection_run_resumes_it(lesion_cohort, tmp_path):
    params = {**QUICK["unet"], "normative_smooth": 2.0}
    run = tmp_path / "run"
    from fusemed.diagnosis.api import train_from_config
    from fusemed.diagnosis.config import DetectionConfig

    cfg = DetectionConfig(cohort=lesion_cohort, model="unet", registration="none", params=params,
                          trainer=DeviceConfig(**CPU))
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_from_config(cfg, run, callbacks=[KillAtSecondEpoch()])
    assert (run / "config.yaml").is_file() and (run / "training/net/checkpoints/last.ckpt").is_file()
    epochs = EpochsSeen()
    train_from_config(cfg, run, callbacks=[epochs])
    assert epochs.seen == [1, 2] and (run / "detector/state.pt").is_file()
    with pytest.raises(ValueError, match="different config.*params"):
        train_detector(lesion_cohort, "unet", run, registration="none", params={**params, "lr": 0.1})


def test_a_detection_run_is_not_resumed_on_a_changed_cohort(lesion_cohort, tmp_path):
    """The run records its cohort's fingerprint when it starts; a rerun after an image changed is refused,
    naming the file, instead of training the rest on another cohort."""
    import os
    import shutil

    from fusemed.diagnosis.api import train_from_config
    from fusemed.diagnosis.config import DetectionConfig

    cohort_dir = shutil.copytree(lesion_cohort, tmp_path / "cohort")
    cfg = DetectionConfig(cohort=cohort_dir, model="unet", registration="none", params=QUICK["unet"],
                          trainer=DeviceConfig(**CPU))
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_from_config(cfg, tmp_path / "run", callbacks=[KillAtSecondEpoch()])
    assert (tmp_path / "run/cohort_fingerprint.json").is_file()
    image = sorted(cohort_dir.rglob("*.nii.gz"))[0]
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match=f"cohort changed.*{image.name}"):
        train_from_config(cfg, tmp_path / "run")


def test_precision_auto_is_mixed_on_a_gpu_only() -> None:
    assert precision(DeviceConfig(accelerator="cpu")) == "32-true"
    assert precision(DeviceConfig(accelerator="gpu")) == "16-mixed"
    assert precision(DeviceConfig(accelerator="gpu", precision="bf16-mixed")) == "bf16-mixed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_gpu_accelerator_without_a_gpu_is_refused_before_training(lesion_cohort, tmp_path) -> None:
    result = CliRunner().invoke(app, ["train", "--cohort", str(lesion_cohort), "--target", "lesion", "--model",
                                      "unet", "--accelerator", "gpu", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "no CUDA GPU is visible" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cli_trains_a_lesion_detector_on_the_gpu(lesion_cohort, tmp_path) -> None:
    import yaml

    run, config = tmp_path / "run", tmp_path / "unet.yaml"
    config.write_text(yaml.safe_dump({"task": "detection", "cohort": str(lesion_cohort), "target": "lesion",
                                      "registration": "none", "params": {"patch": 16, "normative_smooth": 2.0}}))
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--model", "unet", "--accelerator", "gpu",
                                      "--epochs", "2", "--no-progress", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "metrics.json").is_file() and (run / "training/net/checkpoints/last.ckpt").is_file()
    assert json.loads((run / "training/net/model.json").read_text())["epochs_trained"] == 2


DDP_SCRIPT = """
import sys
sys.path[:0] = [{tests!r}, {src!r}]
import torch
torch.set_num_threads(1)
from fusemed.diagnosis import train_detector

train_detector({cohort!r}, "unet", {run!r}, registration="none", params={params!r},
               trainer={{"accelerator": "cpu", "devices": 2, "strategy": "ddp", "progress": False}})
"""


@pytest.mark.slow  # ~30-60 s: two processes import torch, prepare the cohort and train the net
def test_a_detector_trains_with_ddp_on_two_cpu_processes(lesion_cohort, tmp_path) -> None:
    """Lightning's DDP launcher re-executes the script for rank 1 (as a user's would): one complete run."""
    import os
    import subprocess
    import sys

    run, script = tmp_path / "run", tmp_path / "detect_ddp.py"
    params = {**QUICK["unet"], "normative_smooth": 2.0}
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), src=str(Path(__file__).parents[1] / "src"),
                                        cohort=str(lesion_cohort), run=str(run), params=params))
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stderr + proc.stdout
    assert (run / "detector/state.pt").is_file() and (run / "calibration.json").is_file()
    assert json.loads((run / "training/net/model.json").read_text())["epochs_trained"] == 3
