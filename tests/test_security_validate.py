"""Issue 13 items 8, 9 and 10: validate catches single-class and all-empty targets, all-empty
modalities, degenerate volumes, duplicate columns and modality names training rejects; data-derived
strings are escaped for Rich; CSV cells a spreadsheet would execute are neutralised."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cohort_factory import RAS, edit_manifest, edit_spec, make_cohort, write_nifti
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import validate_cohort
from fusemed.io import atomic_write_csv


def _problems(root):
    return [str(p) for p in validate_cohort(root).problems]


def test_single_class_binary_target_is_a_problem(tmp_path):
    root = make_cohort(tmp_path / "c")
    frame = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    frame["outcome"] = "1"
    frame.to_csv(root / "manifest.csv", index=False)
    assert any("outcome" in p and "one class" in p for p in _problems(root))


def test_all_empty_modality_is_a_problem_and_all_empty_target_a_warning(tmp_path):
    root = make_cohort(tmp_path / "c")
    frame = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    frame["pet"] = ""
    frame["outcome"] = ""
    frame.to_csv(root / "manifest.csv", index=False)
    report = validate_cohort(root)
    assert any("'pet'" in str(p) and "every subject" in str(p) for p in report.problems)
    assert any("'outcome'" in w and "no subject" in w for w in report.warnings)


def test_degenerate_volume_is_a_problem(tmp_path):
    root = make_cohort(tmp_path / "c")
    write_nifti(root / "s0" / "tiny.nii.gz", np.ones((1, 1, 1)), RAS)
    edit_manifest(root, "sub-01", pet="s0/tiny.nii.gz")
    assert any("subject sub-01" in p and "degenerate" in p for p in _problems(root))


def test_duplicate_manifest_columns_are_a_problem(tmp_path):
    root = make_cohort(tmp_path / "c")
    lines = (root / "manifest.csv").read_text().splitlines()
    lines = [line + ("," + line.split(",")[lines[0].split(",").index("age")]) for line in lines]
    lines[0] = lines[0].rsplit(",", 1)[0] + ",age"
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    assert any("duplicate column 'age'" in p for p in _problems(root))


def test_modality_names_training_rejects_are_refused_by_validate(tmp_path):
    root = make_cohort(tmp_path / "c")
    edit_spec(root, lambda s: s["modalities"].update({"a.b": s["modalities"].pop("pet")}))
    edit_manifest(root, "sub-01")  # keep the manifest as is
    frame = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False).rename(columns={"pet": "a.b"})
    frame.to_csv(root / "manifest.csv", index=False)
    assert any("a.b" in p and "modality name" in p for p in _problems(root))
    edit_spec(root, lambda s: s["modalities"].update({"training": s["modalities"].pop("a.b")}))
    assert any("training" in p and "modality name" in p for p in _problems(root))


def test_rich_markup_in_site_names_is_printed_verbatim(tmp_path):
    root = make_cohort(tmp_path / "c")
    edit_manifest(root, "sub-01", site="[/x]")
    edit_manifest(root, "P 002", site="A[left]")
    edit_manifest(root, "x6", site="[link=https://evil.example]B[/link]")
    result = CliRunner().invoke(app, ["validate", str(root)])
    assert "Traceback" not in result.output and result.exception is None or result.exit_code in (0, 1)
    assert "[/x]" in result.output and "A[left]" in result.output and "[link=https://evil.example]" in result.output


def test_problem_lines_are_escaped_for_rich(tmp_path):
    root = make_cohort(tmp_path / "c")
    edit_manifest(root, "sub-01", subject="[/x]")
    result = CliRunner().invoke(app, ["validate", str(root)])
    assert result.exit_code == 1 and "subject [/x]" in result.output


def test_csv_cells_a_spreadsheet_would_execute_are_neutralised(tmp_path):
    frame = pd.DataFrame({"subject": ["=1+1", "+cmd", "-x", "@SUM(A1)", "ok", "\t=x"], "n": [-1, 2, 3, 4, 5, 6],
                          "text": ["-1.5", "1e3", "a", "b", "c", "d"]})
    atomic_write_csv(tmp_path / "x.csv", frame)
    back = pd.read_csv(tmp_path / "x.csv", dtype=str)
    assert back["subject"].tolist() == ["'=1+1", "'+cmd", "'-x", "'@SUM(A1)", "ok", "'\t=x"]
    assert back["n"].tolist()[0] == "-1" and back["text"].tolist()[:2] == ["-1.5", "1e3"]


def test_reserved_modality_names_follow_torch():
    import torch.nn as nn

    from fusemed.cohort.spec import RESERVED_MODALITY_NAMES

    public = {n for n in dir(nn.ModuleDict) if not n.startswith("_")} | {"training"}
    assert public <= RESERVED_MODALITY_NAMES | {n for n in public if not n[0].isalpha()}


def test_a_volume_far_from_the_others_is_a_problem(tmp_path):
    root = make_cohort(tmp_path / "c")
    far = RAS.copy()
    far[:3, 3] = [3000.0, 0.0, 0.0]  # 3 m off: an affine in the wrong units or space
    write_nifti(root / "s0" / "far.nii.gz", np.ones((10, 12, 9)), far)
    edit_manifest(root, "sub-01", pet="s0/far.nii.gz")
    assert any("subject sub-01" in p and "mm from" in p for p in _problems(root))


def test_a_preprocessing_failure_names_the_subject_and_modality(tmp_path):
    from fusemed.cohort import Cohort
    from fusemed.training.preprocessing import GraphPreprocessor, Preprocessing

    cohort = Cohort.load(make_cohort(tmp_path / "c"))
    step = GraphPreprocessor().fit([cohort["sub-01"].load("connectome")])
    step.n_nodes = 7
    prep = Preprocessing({"connectome": step})
    import pytest

    with pytest.raises(ValueError, match=r"subject P 002, modality 'connectome': expected a graph of 7 nodes"):
        prep(cohort["P 002"], "connectome")
