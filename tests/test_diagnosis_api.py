"""train_detector -> predict_detector -> evaluate_detector on a small cohort written in the contract format."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from diagnosis_synth import CENTRES, make_case

from fusemed.cohort import CohortSpec, write_cohort
from fusemed.diagnosis import evaluate_detector, load_detector, predict_detector, train_detector
from fusemed.diagnosis.metrics import KEYS
from fusemed.models.mesh import load_mesh

SMALL = {"smooth": 2.0}  # smoothing at the scale of the synthetic 5 mm lesions in 48 mm heads


@pytest.fixture(scope="module")
def epilepsy_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("epi")
    mesh = load_mesh("fsaverage5")
    rng = np.random.default_rng(0)
    rows, truth = [], []
    for i in range(18):
        patient = i >= 10
        s = f"sub-{i:03d}"
        case = make_case(s, i, lesion_at=CENTRES[i % 4] if patient else None, amplitude=2.0, las=i % 2 == 1)
        row = {"subject": s, "diagnosis": int(patient)}
        (root / s).mkdir()
        for m, img in {**case.volumes, "lesion": case.lesion}.items():
            if m == "flair" and i == 3:
                continue  # a hole: missing FLAIR
            nib.save(img, root / s / f"{m}.nii.gz")
            row[m] = f"{s}/{m}.nii.gz"
        feats = rng.normal(size=(mesh.n_vertices, 3)).astype(np.float32)
        labels = np.zeros(mesh.n_vertices, np.int8)
        if patient:
            labels = (np.linalg.norm(mesh.coords - mesh.coords[1000 + 37 * i], axis=1) < 12).astype(np.int8)
            feats[labels > 0] += 3.0
        np.savez(root / s / "cortex.npz", features=feats)
        np.savez(root / s / "vmask.npz", labels=labels)
        row.update(cortex=f"{s}/cortex.npz", lesion_surface=f"{s}/vmask.npz")
        rows.append(row)
        truth.append({"subject": s, "mri_negative": (i % 2 == 0) if patient else False})
    spec = CohortSpec.model_validate({
        "name": "tiny-epilepsy",
        "modalities": {"t1": {"kind": "volume"}, "flair": {"kind": "volume"}, "pet": {"kind": "volume"},
                       "cortex": {"kind": "surface", "mesh": "fsaverage5"}},
        "targets": {"diagnosis": {"kind": "binary"}, "lesion": {"kind": "mask", "reference": "t1"},
                    "lesion_surface": {"kind": "vertex_mask", "mesh": "fsaverage5"}}})
    write_cohort(root, spec, pd.DataFrame(rows))
    (root / "truth").mkdir()
    pd.DataFrame(truth).to_csv(root / "truth" / "oracle.csv", index=False)
    return root


def test_zscore_run_predicts_on_subject_grids_and_evaluates(epilepsy_dir, tmp_path):
    run = train_detector(epilepsy_dir, "zscore", tmp_path / "run", seed=0, registration="none", params=SMALL)
    for f in ("config.yaml", "split.csv", "calibration.json", "cohort_fingerprint.json", "detector/state.pt"):
        assert (run / f).exists(), f
    out = predict_detector(run, epilepsy_dir, tmp_path / "pred", subjects=["sub-003", "sub-011"])
    for s in ("sub-003", "sub-011"):
        t1 = nib.load(epilepsy_dir / s / "t1.nii.gz")
        for kind in ("prob", "uncertainty"):
            img = nib.load(out / f"{s}_{kind}.nii.gz")
            assert img.shape == t1.shape
            np.testing.assert_allclose(img.affine, t1.affine)
        table = pd.read_csv(out / f"{s}_clusters.csv")
        assert list(table.columns[:2]) == ["cluster", "rank"] and table["confidence"].between(0, 1).all()
    table = pd.read_csv(out / "sub-011_clusters.csv")
    assert len(table) >= 1  # the obvious lesion is found in a subject of the cohort (LAS)
    metrics = evaluate_detector(run, epilepsy_dir)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == metrics
    for key in KEYS:
        assert key in metrics and key in metrics["mri_negative"] and key in metrics["mri_visible"]
    assert metrics["sensitivity"] == 1.0 and metrics["top1"] == 1.0
    assert metrics["specificity"] >= 0.5
    # matched operating points next to the run's own threshold, and the curve they are read from
    for key in ("sens_at_spec80", "sens_at_spec90", "sens_at_fp1", "spec_at_spec80", "threshold_at_spec90"):
        assert key in metrics
    assert "sens_at_spec80" in metrics["mri_negative"] and isinstance(metrics["warnings"], list)
    curve = pd.read_csv(run / "froc.csv")
    assert {"threshold", "sensitivity", "fp_per_patient", "specificity"} <= set(curve.columns)
    assert curve["threshold"].is_monotonic_increasing and curve["sensitivity"].is_monotonic_decreasing
    split = pd.read_csv(run / "split.csv")
    assert metrics["n_patients"] + metrics["n_controls"] == (split["split"] == "test").sum()
    per_subject = pd.read_csv(run / "detections.csv")
    patients = per_subject[per_subject["patient"] == 1]
    for key in ("spec80", "spec90", "fp1"):  # the per-patient flags behind paired comparisons
        if metrics[f"sens_at_{key}"] is not None:
            assert patients[f"detected_at_{key}"].mean() == pytest.approx(metrics[f"sens_at_{key}"])


def test_a_repeated_evaluation_reads_its_maps_back_unless_the_detector_changed(epilepsy_dir, tmp_path, monkeypatch):
    """An interrupted or repeated evaluation of a slow detector does not predict its maps again (same
    metrics); a retrained detector (its files changed) does."""
    run = train_detector(epilepsy_dir, "zscore", tmp_path / "run", seed=0, registration="none", params=SMALL)
    first = evaluate_detector(run, epilepsy_dir)
    det_class = type(load_detector(run)[0])
    calls = []
    original = det_class.predict
    monkeypatch.setattr(det_class, "predict", lambda self, case: calls.append(case.subject) or original(self, case))
    assert evaluate_detector(run, epilepsy_dir) == first and calls == []
    state = run / "detector" / "state.pt"
    state.write_bytes(state.read_bytes())  # same weights, new file: the maps can no longer be trusted
    assert evaluate_detector(run, epilepsy_dir) == first and len(calls) == first["n_patients"] + first["n_controls"]


def test_surface_gnn_run_writes_vertex_maps(epilepsy_dir, tmp_path):
    run = train_detector(epilepsy_dir, "surface-gnn", tmp_path / "srun",
                         params={"epochs": 15, "hidden": 16, "layers": 2, "mc_samples": 2})
    det, _, cfg = load_detector(run)
    assert cfg.model == "surface-gnn" and det.threshold_ == 0.5
    out = predict_detector(run, epilepsy_dir, tmp_path / "spred", subjects=["sub-012"])
    with np.load(out / "sub-012_prob.npz") as z:
        assert z["probabilities"].shape == (20484,) and z["uncertainty"].shape == (20484,)
        assert 0 <= z["probabilities"].min() and z["probabilities"].max() <= 1
    metrics = evaluate_detector(run, epilepsy_dir)
    assert set(KEYS) <= set(metrics) and metrics["sensitivity_margin20"] >= metrics["sensitivity"]


def test_unknown_model_is_named_with_a_suggestion(epilepsy_dir, tmp_path):
    with pytest.raises(ValueError, match="siamese-ocsvm"):
        train_detector(epilepsy_dir, "siamese_ocsvm", tmp_path / "bad")


def test_cli_routes_mask_targets_to_detection(epilepsy_dir, tmp_path):
    """`fusemed train/evaluate/predict` choose detection from the target's kind and the run folder."""
    from typer.testing import CliRunner

    from fusemed.cli.main import app

    runner = CliRunner()
    run = tmp_path / "cli-run"
    config = tmp_path / "detect.yaml"  # the tiny synthetic heads are not brains: no registration to MNI
    config.write_text("task: detection\nregistration: none\nparams:\n  smooth: 2.0\n")
    result = runner.invoke(app, ["train", "--cohort", str(epilepsy_dir), "--target", "lesion", "--model", "zscore",
                                 "--out", str(run), "--seed", "0", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "held-out test split" in result.output and "sensitivity" in result.output
    assert json.loads((run / "metrics.json").read_text())["sensitivity"] == 1.0
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "maps"
    result = runner.invoke(app, ["predict", str(run), "--cohort", str(epilepsy_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    t1 = nib.load(epilepsy_dir / "sub-011" / "t1.nii.gz")
    prob = nib.load(out / "sub-011_prob.nii.gz")
    assert prob.shape == t1.shape and np.allclose(prob.affine, t1.affine)
    assert (out / "sub-011_uncertainty.nii.gz").is_file() and (out / "sub-011_clusters.csv").is_file()


def test_subject_without_the_detectors_modalities_is_skipped_not_crashed(epilepsy_dir, tmp_path):
    """sub-003 has no FLAIR: a FLAIR-only detector fits without it and names it instead of crashing."""
    run = train_detector(epilepsy_dir, "zscore", tmp_path / "flair-only", modalities=["flair"], seed=0,
                         registration="none", params=SMALL)
    out = predict_detector(run, epilepsy_dir, tmp_path / "maps", subjects=["sub-003", "sub-004"])
    assert not (out / "sub-003_prob.nii.gz").exists() and (out / "sub-004_prob.nii.gz").is_file()
    metrics = evaluate_detector(run, epilepsy_dir, subjects=["sub-003", "sub-004", "sub-011"])
    assert metrics["n_unscored"] == 1 and metrics["n_patients"] + metrics["n_controls"] == 2


def test_detection_config_merges_flags_and_params_and_names_unknown_keys(tmp_path):
    from pydantic import ValidationError

    from fusemed.diagnosis.config import DetectionConfig

    path = tmp_path / "detect.yaml"
    path.write_text("task: detection\ncohort: cohort\nmodel: zscore\nparams:\n  smooth: 4.0\n  holdout: 0.3\n")
    cfg = DetectionConfig.from_yaml(path, seed=3, params={"smooth": 2.0})
    assert cfg.cohort == (tmp_path / "cohort").resolve() and cfg.seed == 3 and cfg.model == "zscore"
    assert cfg.params == {"smooth": 2.0, "holdout": 0.3} and cfg.registration == "affine"
    path.write_text("task: detection\ncohort: cohort\nepochs: 3\n")
    with pytest.raises(ValidationError, match="epochs"):
        DetectionConfig.from_yaml(path)


@pytest.fixture(scope="module")
def patients_only_dir(tmp_path_factory) -> Path:
    """A hand-made lesion cohort as most public datasets are: patients only (no controls, no diagnosis
    column), T1 + FLAIR + expert masks, in two voxel orders and three grid shapes."""
    root = tmp_path_factory.mktemp("ms")
    rows = []
    for i in range(10):
        s = f"sub-{i:02d}"
        case = make_case(s, 200 + i, lesion_at=CENTRES[i % 4], amplitude=2.0, las=i % 2 == 1,
                         modalities=("t1", "flair"), shape=[(24, 24, 24), (24, 26, 22), (22, 24, 26)][i % 3])
        (root / s).mkdir()
        row = {"subject": s}
        for m, img in {**case.volumes, "lesion": case.lesion}.items():
            nib.save(img, root / s / f"{m}.nii.gz")
            row[m] = f"{s}/{m}.nii.gz"
        rows.append(row)
    spec = CohortSpec.model_validate({
        "name": "patients-only", "modalities": {"t1": {"kind": "volume"}, "flair": {"kind": "volume"}},
        "targets": {"lesion": {"kind": "mask", "reference": "t1"}}})
    write_cohort(root, spec, pd.DataFrame(rows))
    return root


def test_supervised_detector_trains_and_predicts_on_a_patients_only_cohort(patients_only_dir, tmp_path):
    """`fusemed train --target lesion --model unet` on patients only: no normative channels, threshold from
    held-out patients outside their lesions, specificity null (not invented), maps on each input's grid."""
    from typer.testing import CliRunner

    from fusemed.cli.main import app

    run, config = tmp_path / "unet", tmp_path / "detect.yaml"
    config.write_text("task: detection\nregistration: none\nmodalities: [t1, flair]\ncalibration_fraction: 0.5\n"
                      "params: {epochs: 20, patch: 16, samples_per_case: 4, channels: [8, 16, 32], mc_samples: 2}\n")
    result = CliRunner().invoke(app, ["train", "--cohort", str(patients_only_dir), "--target", "lesion",
                                      "--model", "unet", "--out", str(run), "--seed", "0", "--config", str(config)])
    assert result.exit_code == 0, result.output
    det, _, _ = load_detector(run)
    assert det.decisions_["normative"] is False and "no controls" in det.decisions_["normative_reason"]
    assert "patients" in det.decisions_["threshold_rule"] and 0 < det.threshold_ < 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_controls"] == 0 and metrics["n_patients"] >= 2
    assert metrics["specificity"] is None and metrics["sens_at_spec80"] is None and metrics["sens_at_spec90"] is None
    assert metrics["sens_at_fp1"] is not None and metrics["sensitivity"] >= 0.5
    assert metrics["decisions"] == det.decisions_
    assert any("specificity undefined" in w for w in metrics["warnings"])
    out = predict_detector(run, patients_only_dir, tmp_path / "maps")
    for s in (f"sub-{i:02d}" for i in range(10)):  # every input's own shape, affine and voxel order
        t1 = nib.load(patients_only_dir / s / "t1.nii.gz")
        for kind in ("prob", "uncertainty", "clusters"):
            img = nib.load(out / f"{s}_{kind}.nii.gz")
            assert img.shape == t1.shape, (s, kind)
            np.testing.assert_allclose(img.affine, t1.affine)


@pytest.mark.parametrize("name", ["zscore", "ae", "siamese-ocsvm"])
def test_controls_only_detector_refuses_a_cohort_without_controls(patients_only_dir, tmp_path, name):
    with pytest.raises(ValueError, match="has none") as err:
        train_detector(patients_only_dir, name, tmp_path / "run", registration="none")
    message = str(err.value)
    assert str(patients_only_dir) in message and "controls only" in message and "unet" in message
    assert not (tmp_path / "run").exists()  # refused before a run folder is written
