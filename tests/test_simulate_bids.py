"""`fusemed simulate --layout bids` writes a BIDS dataset that `fusemed import bids` turns into the same cohort."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bids_validator import BIDSValidator
from bidsschematools import schema
from simulate_helpers import COMA, cohort
from typer.testing import CliRunner

from fusemed.cli.main import app
from fusemed.cohort import Cohort

PARAMS = dict(COMA, missing=0.3)  # absent modalities and clinical values travel through BIDS too


def _run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    return result


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("simbids")
    direct, bids_dir, imported = tmp / "direct", tmp / "bids", tmp / "imported"
    common = [
        "coma",
        "-n",
        PARAMS["n_subjects"],
        "--seed",
        PARAMS["seed"],
        "--spacing",
        PARAMS["spacing"],
        "--sites",
        PARAMS["sites"],
        "--missing",
        PARAMS["missing"],
    ]
    assert _run("simulate", *common, "--out", direct).exit_code == 0
    result = _run("simulate", *common, "--layout", "bids", "--out", bids_dir)
    assert result.exit_code == 0, result.output
    result = _run("import", "bids", bids_dir, "--out", imported)
    assert result.exit_code == 0, result.output
    assert "fusemed-import.yaml" in result.output
    return direct, bids_dir, imported


def test_import_then_validate_passes(both):
    result = _run("validate", both[2])
    assert result.exit_code == 0, result.output and "cohort is valid" in result.output


def test_imported_cohort_equals_the_direct_one(both):
    direct, imported = Cohort.load(both[0]), Cohort.load(both[2])
    assert direct.spec.model_dump(exclude={"data_root"}) == imported.spec.model_dump(exclude={"data_root"})
    assert direct.subjects == imported.subjects and direct.sites == imported.sites
    assert any(len(c.modalities) < len(direct.modality_names) for c in direct), "missingness is exercised"
    for a, b in zip(direct, imported, strict=True):
        assert a.modalities == b.modalities, a.subject
        assert a.targets == b.targets, a.subject
        for name in a.modalities:
            x, y = a.load(name), b.load(name)
            if name in ("t1", "flair", "pet"):
                np.testing.assert_array_equal(np.asarray(x.dataobj), np.asarray(y.dataobj))
                np.testing.assert_array_equal(x.affine, y.affine)
            elif name == "connectome":
                np.testing.assert_array_equal(x.adjacency, y.adjacency)
                np.testing.assert_array_equal(x.features, y.features)
            else:
                np.testing.assert_array_equal(x, y)  # cortex (V, F) via .mgh, clinical values


def test_simulated_bids_follows_the_offline_rules(both):
    bids_dir = both[1]
    validator = BIDSValidator()
    raw = [
        p
        for p in bids_dir.rglob("*")
        if p.is_file()
        and p.relative_to(bids_dir).parts[0] not in ("derivatives", "truth", "code")
        and not p.name.startswith(".")
    ]
    bad = [str(p.relative_to(bids_dir)) for p in raw if not validator.is_bids("/" + str(p.relative_to(bids_dir)))]
    assert not bad, f"not BIDS names: {bad}"
    description = json.loads((bids_dir / "dataset_description.json").read_text())
    assert {"Name", "BIDSVersion"} <= set(description)
    # REQUIRED sidecar fields straight from the BIDS schema (offline, bidsschematools)
    rules = schema.load_schema().rules.sidecars

    def required(group, names):
        return {
            f
            for n in names
            for f, v in rules[group][n]["fields"].items()
            if (v if isinstance(v, str) else v.get("level")) == "required"
        }

    pet_fields = required(
        "pet", ["PETHardware", "PETRadioChemistry", "PETTime", "PETReconstruction", "EntitiesReconMethodMetadata"]
    )
    mri_fields = required("mri", ["PETMRISequenceSpecifics"])
    pets = sorted(bids_dir.glob("sub-*/pet/*_pet.nii.gz"))
    anats = sorted(bids_dir.glob("sub-*/anat/*.nii.gz"))
    assert pets and anats
    for image in pets + anats:
        sidecar = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
        missing = (pet_fields if image in pets else mri_fields) - set(sidecar)
        assert not missing, f"{image.name} lacks {missing}"


def test_direct_layout_is_unchanged():
    direct = cohort("coma")
    assert (direct / "cohort.yaml").is_file() and (direct / "sub-001/surf/sub-001_space-fsaverage5_cortex.npz").exists()


def test_epilepsy_masks_travel_through_bids(tmp_path):
    from fusemed.importers import import_bids
    from fusemed.simulate import simulate_cohort

    params = {"scenario": "epilepsy", "n_subjects": 3, "seed": 3, "spacing": 4.0, "sites": 2}
    direct = simulate_cohort(out=tmp_path / "d", **params)
    simulate_cohort(out=tmp_path / "b", layout="bids", **params)
    result = import_bids(tmp_path / "b", tmp_path / "c")
    assert result.ok, [str(p) for p in result.problems] + [str(p) for p in result.report.problems]
    a, b = Cohort.load(direct), Cohort.load(tmp_path / "c")
    for x, y in zip(a, b, strict=True):
        assert x.modalities == y.modalities and x.targets["diagnosis"] == y.targets["diagnosis"]
        np.testing.assert_array_equal(x.load_target("lesion_surface"), y.load_target("lesion_surface"))
        np.testing.assert_array_equal(
            np.asarray(x.load_target("lesion").dataobj), np.asarray(y.load_target("lesion").dataobj)
        )


def test_training_on_the_imported_cohort_gives_the_same_out_of_fold_predictions(tmp_path):
    from training_helpers import SMALL_MODEL

    from fusemed.training import TrainConfig, train_run

    args = ["coma", "-n", 12, "--seed", 2, "--spacing", 8.0, "--sites", 2]
    assert _run("simulate", *args, "--out", tmp_path / "direct").exit_code == 0
    assert _run("simulate", *args, "--layout", "bids", "--out", tmp_path / "bids").exit_code == 0
    assert _run("import", "bids", tmp_path / "bids", "--out", tmp_path / "imported").exit_code == 0

    def oof(name):
        config = TrainConfig(cohort=tmp_path / name, target="outcome", fusion="concat", folds=2, epochs=1, seed=0,
                             batch_size=4, spacing=8.0, progress=False, model=SMALL_MODEL)
        return (train_run(config, tmp_path / f"run-{name}") / "predictions.csv").read_text()

    assert oof("direct") == oof("imported")
