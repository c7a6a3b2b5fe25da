"""`fusemed import bids`: small BIDS trees built here become the expected cohort; every defect is named."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import Cohort
from fusemed.importers import import_bids

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
V3 = 642  # fsaverage3 vertices per hemisphere

CONFIG = """
name: toy
session: first
modalities:
  t1: {suffix: T1w, acquisition: mprage}
  flair: {suffix: FLAIR}
  pet: {suffix: pet, tracer: FDG}
  connectome: {kind: graph, suffix: connectome}
  cortex: {kind: surface, mesh: fsaverage3, features: [thickness, curv]}
  clinical: {kind: tabular, columns: [age, sex, gcs], encode: {sex: {F: 0, M: 1}}}
targets:
  outcome: {kind: binary}
  survival: {kind: survival, time: days, event: event}
  lesion: {kind: mask, suffix: mask, desc: lesion, reference: t1}
"""


def _nii(path: Path, value: float = 1.0, shape=(4, 5, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(np.full(shape, value, dtype=np.float32), AFFINE).to_filename(path)


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _tsv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def make_bids(root: Path) -> Path:
    """3 subjects, 2 sessions for sub-01, two T1w acquisitions, FDG + PIB PET, FreeSurfer, connectome, lesion."""
    _json(root / "dataset_description.json", {"Name": "toy study", "BIDSVersion": "1.9.0"})
    _tsv(
        root / "participants.tsv",
        [
            {
                "participant_id": "sub-01",
                "site": "paris",
                "age": 54.5,
                "sex": "M",
                "outcome": 1,
                "days": 30,
                "event": 1,
            },
            {"participant_id": "sub-02", "site": "lyon", "age": 61, "sex": "F", "outcome": 0, "days": 365, "event": 0},
            {
                "participant_id": "sub-03",
                "site": "lyon",
                "age": "n/a",
                "sex": "n/a",
                "outcome": 0,
                "days": 200,
                "event": 0,
            },
        ],
    )
    _tsv(
        root / "phenotype" / "clinical.tsv",
        [{"participant_id": "sub-01", "gcs": 3}, {"participant_id": "sub-02", "gcs": 5}],
    )
    s1 = root / "sub-01" / "ses-01"
    _nii(s1 / "anat" / "sub-01_ses-01_acq-mprage_T1w.nii.gz", 1)
    _nii(s1 / "anat" / "sub-01_ses-01_acq-fast_T1w.nii.gz", 2)
    _nii(s1 / "anat" / "sub-01_ses-01_FLAIR.nii.gz", 3)
    _nii(s1 / "pet" / "sub-01_ses-01_trc-FDG_pet.nii.gz", 4)
    _nii(s1 / "pet" / "sub-01_ses-01_trc-PIB_pet.nii.gz", 5)
    _nii(root / "sub-01" / "ses-02" / "anat" / "sub-01_ses-02_acq-mprage_T1w.nii.gz", 6)
    _nii(root / "sub-02" / "ses-01" / "anat" / "sub-02_ses-01_acq-mprage_T1w.nii.gz", 7)
    _nii(root / "sub-03" / "ses-01" / "pet" / "sub-03_ses-01_trc-FDG_pet.nii.gz", 8)
    # FreeSurfer: .mgh after mri_surf2surf for thickness, curv-format files for curv
    rng = np.random.default_rng(0)
    for subj in ("sub-01_ses-01", "sub-02"):  # a longitudinal-style name and a plain one
        surf = root / "derivatives" / "freesurfer" / subj / "surf"
        surf.mkdir(parents=True)
        for hemi in ("lh", "rh"):
            data = rng.random(V3).astype(np.float32)
            nib.MGHImage(data.reshape(V3, 1, 1), np.eye(4)).to_filename(surf / f"{hemi}.thickness.fsaverage3.mgh")
            nib.freesurfer.write_morph_data(surf / f"{hemi}.curv", rng.random(V3).astype(np.float32))
    conn = root / "derivatives" / "connectome"
    _json(
        conn / "dataset_description.json",
        {"Name": "conn", "BIDSVersion": "1.9.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "toy"}]},
    )
    labelled = pd.DataFrame(np.arange(9.0).reshape(3, 3), index=["a", "b", "c"], columns=["a", "b", "c"])
    path = conn / "sub-01" / "ses-01" / "func" / "sub-01_ses-01_atlas-toy_connectome.tsv"
    path.parent.mkdir(parents=True)
    labelled.to_csv(path, sep="\t")
    path = conn / "sub-02" / "ses-01" / "func" / "sub-02_ses-01_atlas-toy_connectome.tsv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(np.eye(3)).to_csv(path, sep="\t", header=False, index=False)
    les = root / "derivatives" / "lesions"
    _json(
        les / "dataset_description.json",
        {"Name": "les", "BIDSVersion": "1.9.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "toy"}]},
    )
    _nii(les / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01_space-T1w_desc-lesion_mask.nii.gz", 1)
    return root


@pytest.fixture
def bids_dir(tmp_path: Path) -> Path:
    return make_bids(tmp_path / "bids")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "import.yaml"
    path.write_text(CONFIG)
    return path


def _invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.mark.parametrize("link", ["relative", "symlink"])
def test_import_gives_the_expected_manifest(bids_dir, config, tmp_path, link):
    out = tmp_path / "cohort"
    result = _invoke("import", "bids", bids_dir, "--out", out, "--config", config, "--link", link)
    assert result.exit_code == 0, result.output
    assert "cohort is valid" in result.output
    assert "ses-01: 3 subjects" in result.output  # the session rule is said
    manifest = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    base = "../bids/" if link == "relative" else "bids/"
    expected = pd.DataFrame(
        {
            "subject": ["sub-01", "sub-02", "sub-03"],
            "site": ["paris", "lyon", "lyon"],
            "session": ["ses-01", "ses-01", "ses-01"],
            "t1": [
                f"{base}sub-01/ses-01/anat/sub-01_ses-01_acq-mprage_T1w.nii.gz",
                f"{base}sub-02/ses-01/anat/sub-02_ses-01_acq-mprage_T1w.nii.gz",
                "",
            ],
            "flair": [f"{base}sub-01/ses-01/anat/sub-01_ses-01_FLAIR.nii.gz", "", ""],
            "pet": [
                f"{base}sub-01/ses-01/pet/sub-01_ses-01_trc-FDG_pet.nii.gz",
                "",
                f"{base}sub-03/ses-01/pet/sub-03_ses-01_trc-FDG_pet.nii.gz",
            ],
            "connectome": [
                "derived/sub-01/sub-01_connectome.npz",
                f"{base}derivatives/connectome/sub-02/ses-01/func/sub-02_ses-01_atlas-toy_connectome.tsv",
                "",
            ],
            "cortex": ["derived/sub-01/sub-01_cortex.npz", "derived/sub-02/sub-02_cortex.npz", ""],
            "age": ["54.5", "61", ""],
            "sex": ["1", "0", ""],
            "gcs": ["3", "5", ""],
            "outcome": ["1", "0", "0"],
            "days": ["30", "365", "200"],
            "event": ["1", "0", "0"],
            "lesion": [
                f"{base}derivatives/lesions/sub-01/ses-01/anat/sub-01_ses-01_space-T1w_desc-lesion_mask.nii.gz",
                "",
                "",
            ],
        }
    )
    pd.testing.assert_frame_equal(manifest, expected)
    if link == "symlink":
        assert (out / expected["t1"][0]).is_symlink()
    cohort = Cohort.load(out)
    case = cohort["sub-01"]
    assert case.modalities == ("t1", "flair", "pet", "connectome", "cortex", "clinical")
    assert float(case.volume_data("t1")[0].mean()) == 1.0  # the mprage, not the fast acquisition
    assert float(case.volume_data("pet")[0].mean()) == 4.0  # FDG, not PIB
    np.testing.assert_array_equal(case.load("connectome").adjacency, np.arange(9.0).reshape(3, 3))
    surf = bids_dir / "derivatives" / "freesurfer" / "sub-01_ses-01" / "surf"
    cortex = case.load("cortex")
    assert cortex.shape == (2 * V3, 2)
    np.testing.assert_array_equal(cortex[:V3, 0], nib.load(surf / "lh.thickness.fsaverage3.mgh").get_fdata().ravel())
    np.testing.assert_array_equal(cortex[V3:, 1], nib.freesurfer.read_morph_data(surf / "rh.curv"))
    assert cohort.spec.modalities["cortex"].mesh == "fsaverage3"
    assert not any(p.is_file() and not p.is_symlink() and p.suffix == ".gz" for p in out.rglob("*")), "no image copies"


def test_named_session(bids_dir, tmp_path):
    cfg = tmp_path / "ses.yaml"
    cfg.write_text(
        CONFIG.replace("session: first", "session: '02'").replace(
            "  cortex: {kind: surface, mesh: fsaverage3, features: [thickness, curv]}\n", ""
        )
    )
    result = import_bids(bids_dir, tmp_path / "c2", config=cfg, link="relative")
    assert not result.problems, [str(p) for p in result.problems]
    # one subject left: its targets hold one class, which validate refuses for training (issue 13 item 8)
    assert result.report is not None and any("only one class" in str(p) for p in result.report.problems)
    manifest = pd.read_csv(tmp_path / "c2" / "manifest.csv", dtype=str, keep_default_na=False)
    assert list(manifest["subject"]) == ["sub-01"]  # only sub-01 has ses-02
    assert manifest["t1"][0].endswith("sub-01_ses-02_acq-mprage_T1w.nii.gz")
    assert any("sub-02 has no session '02'" in w for w in result.warnings)
    assert any("ses-02" in n for n in result.notes)


def test_every_defect_is_reported_at_once(bids_dir, config, tmp_path):
    # a missing file the dataset names (a DataLad link whose content was never fetched)
    os.symlink("../../../.git/annex/objects/XX/missing", bids_dir / "sub-02/ses-01/anat/sub-02_ses-01_FLAIR.nii.gz")
    # an ambiguous match: a second mprage T1w for sub-01 ses-01
    _nii(bids_dir / "sub-01/ses-01/anat/sub-01_ses-01_acq-mprage_run-2_T1w.nii.gz")
    # a participant without any usable modality
    _nii(bids_dir / "sub-04/ses-01/anat/sub-04_ses-01_T2w.nii.gz")
    table = pd.read_csv(bids_dir / "participants.tsv", sep="\t", dtype=str)
    table.loc[1, "outcome"] = "2"  # a target value outside its kind
    table.loc[len(table)] = ["sub-04", "lyon", "n/a", "n/a", "0", "10", "1"]
    table.loc[len(table)] = ["sub-05", "lyon", "40", "F", "0", "10", "1"]  # listed, no folder
    table.to_csv(bids_dir / "participants.tsv", sep="\t", index=False)
    out = tmp_path / "cohort"
    result = _invoke("import", "bids", bids_dir, "--out", out, "--config", config)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "subject sub-02, sub-02/ses-01/anat/sub-02_ses-01_FLAIR.nii.gz: session ses-01: 'flair': file named" in text
    assert "subject sub-01" in text and "session ses-01: 2 files match 't1'" in text
    assert "sub-01_ses-01_acq-mprage_run-2_T1w.nii.gz" in text and "`run:`" in text
    assert "subject sub-04, sub-04/: no usable modality in ses-01" in text
    assert (
        "subject sub-02, participants.tsv, line 3, column 'outcome': target 'outcome' (binary) must be 0 or 1" in text
    )
    assert "subject sub-05, sub-05/: listed in participants.tsv but the dataset has no folder" in text
    assert "5 problem(s)" in text
    assert not (out / "manifest.csv").exists()


def test_config_errors_come_before_any_file_is_read(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("modalities:\n  pet: {suffix: pet, tracr: FDG}\n  t1: {kind: volme, suffix: T1w}\nsesion: first\n")
    result = _invoke("import", "bids", tmp_path / "does-not-exist", "--out", tmp_path / "c", "--config", cfg)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "3 problem(s) in the import config" in text
    assert "Did you mean 'tracer'?" in text and "Did you mean 'volume'?" in text and "Did you mean 'session'?" in text
    assert "BIDS folder not found" not in text


def test_defaults_find_the_ambiguity_and_the_derivatives(bids_dir, tmp_path):
    result = import_bids(bids_dir, tmp_path / "c", link="relative")
    text = "\n".join(str(p) for p in result.problems)
    assert "2 files match 't1'" in text and "`acquisition:`" in text
    # the default surface is thickness/curv/sulc on fsaverage5: both gaps are named, with the file
    assert "freesurfer/sub-01_ses-01/surf/lh.thickness.fsaverage3.mgh" not in text
    assert "feature 'sulc' (lh) not found" in text
    assert "sub-02/surf/lh.curv: surface 'cortex': 642 vertices, fsaverage5 has 10242 per hemisphere" in text
    assert not (tmp_path / "c" / "manifest.csv").exists()

    (bids_dir / "sub-01/ses-01/anat/sub-01_ses-01_acq-fast_T1w.nii.gz").unlink()
    shutil.rmtree(bids_dir / "derivatives" / "freesurfer")
    result = import_bids(bids_dir, tmp_path / "c", link="relative")
    assert result.ok, [str(p) for p in result.problems] + [str(p) for p in result.report.problems]
    cohort = Cohort.load(tmp_path / "c")
    assert list(cohort.spec.modalities) == ["t1", "flair", "pet", "connectome", "clinical"]
    assert cohort.spec.modalities["clinical"].columns == ["age", "outcome", "days", "event"]
    assert "lesion" in cohort.spec.targets and cohort.spec.site_column == "site"
    assert any("sex" in w for w in result.warnings)  # a text column is not guessed into numbers
