"""Issue 13 item 4: manifest paths stay in the cohort folder (or its declared data_root); error
messages never echo file contents."""

from __future__ import annotations

import shutil

from cohort_factory import edit_manifest, edit_spec, make_cohort

from fusemed.cohort import Cohort, validate_cohort


def _problems(root):
    return [str(p) for p in validate_cohort(root).problems]


def _outside(tmp_path):
    root = make_cohort(tmp_path / "c")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(root / "s0" / "t1.nii", outside / "t1.nii")
    return root, outside


def test_dotdot_absolute_and_symlink_escapes_are_refused(tmp_path):
    root, outside = _outside(tmp_path)
    (root / "s2" / "link.nii").symlink_to(outside / "t1.nii")
    edit_manifest(root, "sub-01", t1="../elsewhere/t1.nii")
    edit_manifest(root, "P 002", t1=str(outside / "t1.nii"))
    edit_manifest(root, "pat_003.b", t1="s2/link.nii")
    problems = _problems(root)
    for who in ("sub-01", "P 002", "pat_003.b"):
        assert any(f"subject {who}" in p and "outside the cohort folder" in p for p in problems), problems


def test_data_root_allows_an_explicit_external_folder(tmp_path):
    root, outside = _outside(tmp_path)
    edit_manifest(root, "sub-01", t1=str(outside / "t1.nii"))
    edit_manifest(root, "P 002", t1="../elsewhere/t1.nii")
    edit_spec(root, lambda s: s.update(data_root=str(outside)))
    assert Cohort.load(root)["sub-01"].path("t1").resolve() == (outside / "t1.nii").resolve()
    assert not [p for p in _problems(root) if "outside" in p]
    (tmp_path / "third").mkdir()
    shutil.copy(outside / "t1.nii", tmp_path / "third" / "t1.nii")
    edit_manifest(root, "004", t1="../third/t1.nii")
    assert any("subject 004" in p and "outside" in p for p in _problems(root))


def test_a_graph_cell_on_a_text_file_does_not_leak_its_content(tmp_path):
    root = make_cohort(tmp_path / "c")
    (root / "secret.csv").write_text("TOP-SECRET-PASSWORD,hunter2\nx,y\n")
    edit_manifest(root, "sub-01", connectome="secret.csv")
    problems = _problems(root)
    assert any("subject sub-01" in p for p in problems)
    text = "\n".join(problems)
    assert "TOP-SECRET" not in text and "hunter2" not in text
