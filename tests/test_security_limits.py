"""Issue 13 items 6 and 10 (YAML): declared volume sizes are checked before any voxel is read; every
YAML file is read by one bounded loader (no alias expansion, size cap, UTF-8, no content in errors)."""

from __future__ import annotations

import gzip
import tracemalloc

import nibabel as nib
import numpy as np
import pytest
from cohort_factory import edit_manifest, make_cohort

from fusemed.cohort import validate_cohort
from fusemed.cohort.readers import ReadError, read_volume
from fusemed.io import YamlError, load_yaml

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def huge_header(path, shape=(10000, 10000, 10000), gz=False):
    """A header-only NIfTI declaring ``shape`` float32 voxels (a few hundred bytes on disk)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.float32)
    hdr.set_qform(np.eye(4), code=1)
    hdr.set_sform(np.eye(4), code=1)
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * 64
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_a_huge_declared_volume_is_refused_before_reading(tmp_path, gz):
    path = huge_header(tmp_path / ("big.nii.gz" if gz else "big.nii"), gz=gz)
    tracemalloc.start()
    with pytest.raises(ReadError, match="declares"):
        read_volume(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50e6


def test_budget_is_configurable(tmp_path, monkeypatch):
    img = nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), np.eye(4))
    nib.save(img, str(tmp_path / "v.nii"))
    assert read_volume(tmp_path / "v.nii").shape == (20, 20, 20)
    monkeypatch.setenv("FUSEMED_MAX_VOLUME_MB", "0.01")
    with pytest.raises(ReadError, match="FUSEMED_MAX_VOLUME_MB"):
        read_volume(tmp_path / "v.nii")


def test_validate_names_the_subject_of_a_huge_volume(tmp_path):
    root = make_cohort(tmp_path / "c")
    huge_header(root / "s0" / "big.nii.gz", gz=True)
    edit_manifest(root, "sub-01", t1="s0/big.nii.gz")
    problems = [str(p) for p in validate_cohort(root).problems]
    assert any("subject sub-01" in p and "declares" in p for p in problems), problems


def test_yaml_alias_bomb_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text(BOMB)
    with pytest.raises(YamlError, match="alias"):
        load_yaml(tmp_path / "c.yaml")


def test_yaml_size_utf8_and_no_content_in_errors(tmp_path):
    (tmp_path / "big.yaml").write_text("a: " + "x" * 2_000_000)
    with pytest.raises(YamlError, match="larger"):
        load_yaml(tmp_path / "big.yaml")
    (tmp_path / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(YamlError, match="UTF-8"):
        load_yaml(tmp_path / "latin.yaml")
    (tmp_path / "bad.yaml").write_text("SECRET-VALUE: [unclosed\n")
    with pytest.raises(YamlError) as err:
        load_yaml(tmp_path / "bad.yaml")
    assert "SECRET" not in str(err.value) and "line" in str(err.value)
    assert load_yaml(tmp_path / "missing.yaml", missing_ok=True) is None


def test_every_yaml_reader_uses_the_safe_loader():
    from pathlib import Path

    import fusemed

    src = Path(fusemed.__file__).parent
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py")
                 if p.name != "io.py" and ("yaml.safe_load(" in p.read_text() or "yaml.load(" in p.read_text())]
    assert offenders == []


def test_cli_train_config_bomb_is_a_one_line_refusal(tmp_path):
    from typer.testing import CliRunner

    from fusemed.cli.main import app

    (tmp_path / "c.yaml").write_text(BOMB)
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), "--config", str(tmp_path / "c.yaml")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "alias" in result.output
