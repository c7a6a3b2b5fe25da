"""The prototype's published setting (`siamese-ocsvm`, `preset: published`): 2D patches, the team's 2D
autoencoder, 16-d codes, one OC-SVM per voxel kept as plain arrays, maps identical after save/load.
The CPU default is covered, unchanged, by test_diagnosis_detectors.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diagnosis_synth import make_case
from joblib import parallel_config
from sklearn.svm import OneClassSVM

from fusemed.diagnosis import Detector, get_detector
from fusemed.diagnosis.detectors.siamese import fit_ocsvms
from fusemed.diagnosis.detectors.siamese_net import PatchAE, PatchAE2D, pad_for_patches

SHAPE = (16, 16, 16)  # a small head: ~1,000 voxels, so ~1,000 per-voxel SVMs
FAST = {"epochs": 1, "pairs_per_epoch": 64, "batch_size": 32, "holdout": 0.0}


def test_published_preset_sets_the_paper_and_explicit_parameters_win():
    klass = get_detector("siamese-ocsvm")
    default, paper = klass(), klass(preset="published")
    assert {k: default.params[k] for k in ("preset", "dims", "patch", "svm", "smooth")} == \
        {"preset": "cpu", "dims": 3, "patch": 9, "svm": "parcel", "smooth": 6.0}
    assert {k: paper.params[k] for k in ("dims", "patch", "latent", "svm", "nu", "stride", "smooth")} == \
        {"dims": 2, "patch": 15, "latent": 16, "svm": "voxel", "nu": 0.03, "stride": 1, "smooth": 0.0}
    assert paper.patch_shape == (15, 15, 1) and default.patch_shape == (9, 9, 9)
    assert klass(preset="published", patch=11, smooth=2.0).params["patch"] == 11
    with pytest.raises(ValueError, match="did you mean 'published'"):
        klass(preset="publishd")
    with pytest.raises(ValueError, match="did you mean 'voxel'"):
        klass(svm="voxl")


def test_published_architecture_shapes():
    net = PatchAE2D(2, 15, 16).eval()
    z, rec = net(torch.randn(3, 2, 15, 15))
    assert z.shape == (3, 16) and rec.shape == (3, 2, 15, 15)
    assert [m.out_channels for m in net.encoder if isinstance(m, torch.nn.Conv2d)] == [4, 8]
    assert all(m.kernel_size == (5, 5) for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert isinstance(get_detector("siamese-ocsvm")()._net(), PatchAE)


def test_ragged_svm_bank_matches_scikit_learn():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((4, 12, 16))
    usable = np.ones((4, 12), bool)
    usable[1, :3] = False
    counts, sv, coef, icpt, gamma = fit_ocsvms(codes, usable, 0.03)
    off = np.r_[0, np.cumsum(counts)]
    query = rng.standard_normal((5, 16))
    for v in range(4):
        ref = OneClassSVM(nu=0.03, kernel="rbf", gamma="scale").fit(codes[v][usable[v]])
        k = np.exp(-gamma[v] * ((query[:, None] - sv[off[v]:off[v + 1]][None]) ** 2).sum(-1))
        np.testing.assert_allclose(k @ coef[off[v]:off[v + 1]] + icpt[v], ref.decision_function(query), rtol=1e-6)


@pytest.fixture(scope="module")
def controls():
    return [make_case(f"sub-c{i:02d}", 200 + i, shape=SHAPE, modalities=("t1", "flair")) for i in range(6)]


@pytest.fixture(scope="module")
def published(controls):
    torch.manual_seed(0)
    return get_detector("siamese-ocsvm")(registration="none", preset="published", **FAST).fit(controls)


def test_published_fit_has_one_svm_per_voxel_and_2d_codes(published):
    det = published
    assert isinstance(det.net_, PatchAE2D)
    assert len(det.voxel_ids_) == det.support_.sum() > 500
    assert len(det.sv_offsets_) == len(det.voxel_ids_) + 1 and det.sv_offsets_[-1] == len(det.sv_) == len(det.coef_)
    assert det.sv_.shape[1] == 16 and np.all(np.diff(det.sv_offsets_) >= 1)
    x, present, fg = det.prepare(make_case("sub-x", 300, shape=SHAPE, modalities=("t1", "flair")))
    xp = pad_for_patches(x * present[:, None, None, None], det.patch_shape)
    centres = np.argwhere(fg & det.support_)[:50]
    assert det._patches(xp, centres).shape == (50, 2, 15, 15)
    z = det._codes(xp, centres)
    assert z.shape == (50, 16)
    # the vectorised ragged evaluation is each voxel's own SVM
    slot = np.searchsorted(det.voxel_ids_, np.ravel_multi_index(tuple(centres.T), SHAPE))
    lo, hi = det.sv_offsets_[slot], det.sv_offsets_[slot + 1]
    own = [det.coef_[a:b] @ np.exp(-det.gamma_[s] * ((zi - det.sv_[a:b]) ** 2).sum(1)) + det.intercept_[s]
           for zi, s, a, b in zip(z, slot, lo, hi, strict=True)]
    np.testing.assert_allclose(det.voxel_decision(z, centres), own, rtol=1e-5, atol=1e-6)


def test_published_maps_round_trip_identically(published, tmp_path):
    case = make_case("sub-p", 301, lesion_at=(8, 8, 8), amplitude=2.0, shape=SHAPE, modalities=("t1", "flair"))
    before = published.predict(case)
    published.save(tmp_path / "proto")
    loaded = Detector.load(tmp_path / "proto")
    assert loaded.params["preset"] == "published" and loaded.params["svm"] == "voxel"
    after = loaded.predict(case)
    np.testing.assert_array_equal(np.asarray(after.prob.dataobj), np.asarray(before.prob.dataobj))
    np.testing.assert_array_equal(np.asarray(after.uncertainty.dataobj), np.asarray(before.uncertainty.dataobj))
    assert np.asarray(before.prob.dataobj).max() > 0


def test_voxel_svms_do_not_depend_on_the_number_of_workers(published, controls):
    """Workers split each chunk of voxels and their banks are joined in order (threads here: a process
    pool costs more to start than this tiny fit)."""
    det = published
    order = np.random.default_rng(det.seed).permutation(len(controls))  # as `fit` ordered them (holdout 0)
    prepared = [det.prepare(controls[i]) for i in order]
    xs = [pad_for_patches(x * p[:, None, None, None], det.patch_shape) for x, p, _ in prepared]
    inners = [det._inner(fg) for _, _, fg in prepared]
    bank = {k: getattr(det, f"{k}_").copy() for k in ("sv", "coef", "intercept", "gamma", "sv_offsets", "voxel_ids")}
    det.params["n_jobs"] = 3
    try:
        with parallel_config(backend="threading"):
            det._fit_voxel_svms(xs, inners, np.random.default_rng(det.seed))
    finally:
        det.params["n_jobs"] = 1
    for k, v in bank.items():
        np.testing.assert_array_equal(getattr(det, f"{k}_"), v, err_msg=k)
