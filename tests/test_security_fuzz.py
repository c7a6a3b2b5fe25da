"""Issue 13 acceptance: property tests over ids, manifests, YAML and NIfTI headers. Whatever the input:
no traceback (only the documented errors), nothing written outside the given folders, memory bounded."""

from __future__ import annotations

import os
import struct
import tempfile
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml
from cohort_factory import make_cohort
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import CohortError, validate_cohort
from fusemed.cohort.readers import ReadError, load_volume_data, read_volume
from fusemed.cohort.spec import CohortSpec
from fusemed.io import YamlError, load_yaml, output_path, subject_id_problem

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["../x", "../../x", "/etc/passwd", "a/../../b", "..", ".", "-rf", "=1+1", "@x", "[/x]",
                     "[link=http://e]x[/link]", "x\x00y", "C:\\x", "~/x", "con", "sub-01", "P 002", "sub-ÉTÉ5"]),
)


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@FAST
@given(hostile_text)
def test_an_id_is_safe_or_refused_and_a_safe_id_stays_inside(sid):
    why = subject_id_problem(sid)
    if why is None:
        with tempfile.TemporaryDirectory() as tmp:
            for suffix in ("_prob.nii.gz", "_uncertainty.nii.gz", "_clusters.csv"):
                path = output_path(tmp, f"{sid}{suffix}")
                assert path.parent == Path(tmp).resolve()
        assert not {"/", "\\", "\x00", "\n"} & set(sid) and ".." not in sid and sid[0] not in "-.=+@["
    else:
        assert isinstance(why, str)




def _base_cohort() -> Path:
    global _BASE
    if "_BASE" not in globals():
        _BASE = make_cohort(Path(tempfile.mkdtemp()) / "c", n=4)
    return _BASE


@settings(FAST, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(["subject", "t1", "pet", "connectome", "cortex", "age", "outcome",
                                           "lesion", "site", "days"]), hostile_text), min_size=1, max_size=6))
def test_hostile_manifest_cells_validate_without_traceback_or_stray_files(edits):
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        outer = Path(tmp)
        root = outer / "cohort"
        shutil.copytree(_base_cohort(), root)
        frame = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
        for i, (col, value) in enumerate(edits):
            frame.loc[i % len(frame), col] = value
        frame.to_csv(root / "manifest.csv", index=False)
        before = _tree(outer)
        report = validate_cohort(root)
        assert isinstance(report.problems, list)
        result = CliRunner().invoke(app, ["validate", str(root)])
        assert result.exit_code in (0, 1), result.output
        assert "Traceback" not in result.output
        assert _tree(outer) == before


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
yaml_values = st.recursive(
    yaml_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20)


@settings(FAST, max_examples=40)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 yaml_values.map(lambda v: yaml.safe_dump(v).encode()),
                 st.integers(1, 12).map(lambda n: ("a: &a [x, x]\n" + "".join(
                     f"k{i}: &k{i} [*{'a' if i == 0 else f'k{i - 1}'}, *{'a' if i == 0 else f'k{i - 1}'}]\n"
                     for i in range(n))).encode()),
                 st.integers(1, 300).map(lambda n: ("[" * n + "]" * n).encode())))
def test_any_yaml_bytes_load_or_give_a_yaml_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cohort.yaml"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            load_yaml(path)
        except YamlError:
            pass
        try:
            CohortSpec.from_yaml(path)
        except CohortError:
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 100e6


def _nifti_bytes(dims, datatype, bitpix, vox_offset, tail, gz):
    hdr = nib.Nifti1Header()
    block = bytearray(hdr.binaryblock)
    struct.pack_into("<8h", block, 40, *dims)
    struct.pack_into("<hh", block, 70, datatype, bitpix)
    struct.pack_into("<f", block, 108, vox_offset)
    raw = bytes(block) + b"\0" * 4 + tail
    import gzip

    return gzip.compress(raw) if gz else raw


@settings(FAST, max_examples=80)
@given(dims=st.tuples(st.integers(-2, 8), *[st.integers(-5, 32767)] * 7),
       datatype=st.sampled_from([2, 4, 8, 16, 64, 128, 256, 512, 768, 1024, 0, 9999]),
       bitpix=st.sampled_from([0, 8, 16, 32, 64, 7]),
       vox_offset=st.sampled_from([0.0, 352.0, 348.0, 1e9, -1.0]),
       tail=st.binary(max_size=2000), gz=st.booleans())
def test_any_nifti_header_reads_or_gives_a_read_error_in_bounded_memory(dims, datatype, bitpix, vox_offset,
                                                                        tail, gz):
    os.environ["FUSEMED_MAX_VOLUME_MB"] = "16"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / ("v.nii.gz" if gz else "v.nii")
            path.write_bytes(_nifti_bytes(dims, datatype, bitpix, vox_offset, tail, gz))
            tracemalloc.start()
            try:
                img = read_volume(path)
                data = load_volume_data(img, path)
                assert data.nbytes <= 16 * 2**20
            except ReadError:
                pass
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert peak < 200e6
    finally:
        del os.environ["FUSEMED_MAX_VOLUME_MB"]


def test_a_valid_small_volume_still_reads(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((5, 6, 7), np.float32), np.eye(4)), str(tmp_path / "v.nii.gz"))
    assert load_volume_data(read_volume(tmp_path / "v.nii.gz"), tmp_path / "v.nii.gz").shape == (5, 6, 7)
