"""Issue 13 item 1: subject ids are safe file-name components; outputs never leave their folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from cohort_factory import edit_manifest, make_cohort

from fusemed.cohort import Cohort, validate_cohort
from fusemed.io import UnsafePathError, output_path, subject_id_problem

GOOD = ["sub-01", "P 002", "pat_003.b", "004", "sub-ÉTÉ5", "x6", "a"]
BAD = ["../x", "../../etc/x", "/tmp/x", "a/b", "a\\b", "..", "a..b", "-rf", ".hidden", "x\x00y", "x\ny",
       "C:x", "=cmd", "+1", "@x", "x.", "x ", "con", "NUL", "a" * 129, "[/x]"]


@pytest.mark.parametrize("sid", GOOD)
def test_existing_ids_stay_valid(sid):
    assert subject_id_problem(sid) is None


@pytest.mark.parametrize("sid", BAD)
def test_unsafe_ids_are_named(sid):
    assert subject_id_problem(sid)


def test_output_path_stays_inside(tmp_path):
    assert output_path(tmp_path, "sub-01_prob.nii.gz") == tmp_path.resolve() / "sub-01_prob.nii.gz"
    for name in ("../x_prob.nii.gz", "/tmp/x_prob.nii.gz", "a/../../x"):
        with pytest.raises(UnsafePathError):
            output_path(tmp_path, name)


def test_output_path_refuses_symlink_out(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        output_path(tmp_path / "out", "link/x.csv")


def test_validate_reports_unsafe_id_with_line(tmp_path):
    root = make_cohort(tmp_path / "c")
    edit_manifest(root, "x6", subject="../../escape")
    report = validate_cohort(root)
    bad = [p for p in report.problems if p.subject == "../../escape" or "subject id" in p.message]
    assert bad and bad[0].line == 7 and "safe" in bad[0].message
    with pytest.raises(ValueError):
        Cohort.load(root)


def test_detection_outputs_refuse_escaping_ids(tmp_path, monkeypatch):
    from fusemed.diagnosis import api

    class Maps:
        space = "volume"

    def fake_detect(*_a, **_k):
        raise AssertionError("must refuse before detecting")

    monkeypatch.setattr(api, "detect", fake_detect)

    class Case:
        subject = "../../pwned"

    with pytest.raises(UnsafePathError):
        api._write_subject(None, None, Case(), tmp_path / "out")
    assert not (tmp_path / "pwned_prob.nii.gz").exists()
    assert list(Path(tmp_path).rglob("*pwned*")) == []
