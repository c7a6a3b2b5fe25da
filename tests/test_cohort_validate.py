"""`fusemed validate`: accepts a valid hand-made cohort, rejects each defect naming subject and file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from cohort_factory import RAS, edit_manifest, edit_spec, write_nifti
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import validate_cohort

runner = CliRunner()


def problems_of(folder) -> list[str]:
    report = validate_cohort(folder)
    assert not report.ok, "expected the cohort to be rejected"
    return [str(p) for p in report.problems]


def one_problem_with(folder, *fragments: str) -> str:
    found = [p for p in problems_of(folder) if all(f in p for f in fragments)]
    assert found, f"no problem mentions {fragments}: {problems_of(folder)}"
    return found[0]


def test_valid_cohort_passes_with_summary(cohort_dir):
    report = validate_cohort(cohort_dir)
    assert report.ok, report.problems
    s = report.summary
    assert s["subjects"] == 6 and s["sites"] == {"A": 3, "B": 3}
    assert s["availability"]["pet"] == 4 and s["availability"]["t1"] == 6
    assert s["patterns"]["t1+pet+connectome+cortex+clinical"] == 4
    assert s["targets"]["outcome"]["counts"] == {"0": 3, "1": 3}
    assert s["targets"]["survival"]["events"] == 2
    assert any("notes" in w for w in report.warnings)  # undeclared column: warned, not fatal


def test_cli_valid_exit_zero(cohort_dir):
    result = runner.invoke(app, ["validate", str(cohort_dir)])
    assert result.exit_code == 0, result.output
    assert "6 subjects" in result.output and "cohort is valid" in result.output


def test_missing_file(cohort_dir):
    (cohort_dir / "s2" / "t1.nii.gz").unlink()
    msg = one_problem_with(cohort_dir, "pat_003.b", "file not found", "s2/t1.nii.gz")
    assert "column 't1'" in msg and "line 4" in msg


def test_truncated_gzip(cohort_dir):
    path = cohort_dir / "s1" / "t1.nii.gz"
    path.write_bytes(path.read_bytes()[:200])
    one_problem_with(cohort_dir, "P 002", "s1/t1.nii.gz")


def test_corrupt_archive_not_a_nifti(cohort_dir):
    (cohort_dir / "s0" / "pet.nii.gz").write_bytes(gzip.compress(b"garbage" * 50))
    one_problem_with(cohort_dir, "sub-01", "s0/pet.nii.gz", "not a readable NIfTI")


def test_4d_where_3d_expected(cohort_dir):
    write_nifti(cohort_dir / "s0" / "t1.nii", np.zeros((10, 12, 9, 4)), RAS)
    one_problem_with(cohort_dir, "sub-01", "expected a 3D volume", "4D")


def test_nan_in_image(cohort_dir):
    data = np.ones((10, 12, 9))
    data[1, 1, 1] = np.nan
    data[2, 2, 2] = np.inf
    write_nifti(cohort_dir / "s0" / "t1.nii", data, RAS)
    one_problem_with(cohort_dir, "sub-01", "s0/t1.nii", "2 NaN/Inf")


def test_non_square_adjacency(cohort_dir):
    np.savez(cohort_dir / "s3" / "conn.npz", adjacency=np.ones((5, 4)))
    one_problem_with(cohort_dir, "004", "s3/conn.npz", "square")


def test_duplicate_subject_ids(cohort_dir):
    edit_manifest(cohort_dir, "x6", subject="sub-01")
    one_problem_with(cohort_dir, "sub-01", "duplicate subject id", "line 7", "first on line 2")


def test_subject_with_no_modality(cohort_dir):
    edit_manifest(cohort_dir, "004", t1=None, pet=None, connectome=None, cortex=None, age=None, sex=None, gcs=None)
    one_problem_with(cohort_dir, "004", "no modality at all")


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("outcome", "2", "must be 0 or 1"),
        ("event", "yes", "event must be 0 or 1"),
        ("days", "-3", "time must be a number >= 0"),
        ("age", "forty", "expected a finite number"),
    ],
)
def test_value_outside_its_kind(cohort_dir, column, value, expected):
    edit_manifest(cohort_dir, "x6", **{column: value})
    one_problem_with(cohort_dir, "x6", expected, f"column {column!r}", "manifest.csv")


def test_declared_column_absent(cohort_dir):
    edit_spec(cohort_dir, lambda s: s["modalities"].update(flair={"kind": "volume"}))
    edit_spec(cohort_dir, lambda s: s["targets"].update(gos={"kind": "binary"}))
    problems = problems_of(cohort_dir)
    assert any("'flair'" in p and "absent from the manifest" in p for p in problems)
    assert any("'gos'" in p and "target 'gos'" in p for p in problems)


def test_unknown_kind_did_you_mean(cohort_dir):
    edit_spec(cohort_dir, lambda s: s["modalities"]["pet"].update(kind="volme"))
    msg = one_problem_with(cohort_dir, "cohort.yaml", "did you mean 'volume'")
    assert "modalities.pet.kind" in msg


def test_mask_shape_mismatch(cohort_dir):
    write_nifti(cohort_dir / "s5" / "lesion.nii.gz", np.zeros((4, 4, 4)), np.diag([-3.0, 3, 3, 1]))
    one_problem_with(cohort_dir, "x6", "s5/lesion.nii.gz", "does not match its volume 't1'")


def test_every_problem_is_listed_not_just_the_first(cohort_dir):
    (cohort_dir / "s2" / "t1.nii.gz").unlink()
    np.savez(cohort_dir / "s3" / "conn.npz", adjacency=np.ones((5, 4)))
    edit_manifest(cohort_dir, "x6", outcome="7")
    problems = problems_of(cohort_dir)
    assert len(problems) >= 3
    assert {"pat_003.b", "004", "x6"} <= {s for s in ("pat_003.b", "004", "x6") for p in problems if s in p}


def test_cli_rejects_without_traceback(cohort_dir):
    (cohort_dir / "s2" / "t1.nii.gz").unlink()
    edit_manifest(cohort_dir, "x6", outcome="7")
    result = runner.invoke(app, ["validate", str(cohort_dir)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "2 problem(s)" in result.output and "pat_003.b" in result.output and "x6" in result.output


def test_missing_folder_and_yaml(tmp_path):
    assert "cohort folder not found" in problems_of(tmp_path / "nope")[0]
    (tmp_path / "c").mkdir()
    assert "cohort.yaml not found" in problems_of(tmp_path / "c")[0]
