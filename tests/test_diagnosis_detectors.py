"""Detector guarantees users rely on: geometry kept, obvious lesion ranked first, clean controls
clean, any modality may be missing for the latent-fusion detector, state round-trips safely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diagnosis_synth import cohort, make_case

from fusemed.diagnosis import DETECTORS, Detector, NotFittedError, detect, get_detector
from fusemed.diagnosis.detectors.voxelnet import HeMISNet

FAST = {
    "unet": {"epochs": 1, "patch": 16, "samples_per_case": 2, "channels": [4, 8, 16], "mc_samples": 2},
    "hemis-unet": {"epochs": 1, "patch": 16, "samples_per_case": 2, "channels": [4, 8], "mc_samples": 2},
    "zscore": {"smooth": 2.0},  # the scale of the synthetic 5 mm lesions
    "siamese-ocsvm": {"epochs": 2, "pairs_per_epoch": 256, "samples_per_parcel": 60, "control_quantile": 1.0,
                      "smooth": 2.0, "holdout": 0.4},
    "ae": {"patch": 16, "channels": [8, 16], "epochs": 2, "patches_per_epoch": 128, "control_quantile": 1.0,
           "smooth": 2.0, "holdout": 0.4},
}


@pytest.fixture(scope="module")
def cases():
    return cohort(n_controls=14, n_patients=4, seed=1)


@pytest.fixture(scope="module")
def fitted(cases):
    torch.manual_seed(0)
    return {name: get_detector(name)(registration="none", **params).fit(cases) for name, params in FAST.items()}


def test_registry_lists_every_detector_and_suggests_on_typo():
    assert {"unet", "hemis-unet", "siamese-ocsvm", "zscore", "surface-gnn"} <= set(DETECTORS)
    with pytest.raises(ValueError, match="hemis-unet"):
        get_detector("hemis_unett")


def test_unfitted_detector_raises():
    with pytest.raises(NotFittedError):
        get_detector("zscore")().predict(make_case("s", 0))


@pytest.mark.parametrize("name", sorted(FAST))
@pytest.mark.parametrize("las", [False, True])
def test_maps_keep_the_subject_grid(fitted, name, las):
    case = make_case("sub-x", 50, lesion_at=(12, 12, 12), las=las)
    maps = fitted[name].predict(case)
    ref = case.volumes["t1"]
    for img in (maps.prob, maps.uncertainty):
        assert img.shape == ref.shape
        np.testing.assert_allclose(img.affine, ref.affine)
        data = np.asarray(img.dataobj)
        assert np.isfinite(data).all() and data.min() >= 0
    assert np.asarray(maps.prob.dataobj).max() <= 1


@pytest.mark.parametrize("name", sorted(FAST))
def test_state_round_trips_through_weights_only_files(fitted, name, tmp_path):
    det = fitted[name]
    if "mc_samples" in det.params:
        det.params["mc_samples"] = 1  # one deterministic pass (no MC dropout) to compare
    case = make_case("sub-y", 51, lesion_at=(9, 12, 12))
    before = np.asarray(det.predict(case).prob.dataobj)
    det.save(tmp_path / name)
    loaded = Detector.load(tmp_path / name)
    assert type(loaded) is type(det) and loaded.threshold_ == det.threshold_
    np.testing.assert_allclose(np.asarray(loaded.predict(case).prob.dataobj), before, atol=1e-5)


@pytest.mark.parametrize("name", ["zscore", "siamese-ocsvm", "ae"])
def test_planted_obvious_lesion_is_rank_one_and_clean_control_has_no_cluster(fitted, name):
    det = fitted[name]
    for seed, centre in [(60, (9, 12, 12)), (61, (14, 9, 13))]:
        case = make_case("sub-p", seed, lesion_at=centre, amplitude=2.0, las=seed % 2 == 1)
        _, rec = detect(det, case)
        assert len(rec.clusters) >= 1
        hits = rec.hits()
        assert hits[0], f"{name}: rank-1 cluster misses the lesion ({rec.clusters})"
        top = rec.clusters.iloc[0]
        world = case.lesion.affine @ np.r_[np.argwhere(rec.lesion).mean(0), 1]
        assert np.linalg.norm(world[:3] - top[["x_mm", "y_mm", "z_mm"]].to_numpy(float)) < 8
    # the threshold is the largest held-out control's cluster peak (control_quantile 1.0): a new control
    # exceeds it with probability ~1/(n+1) by exchangeability (n = 6 here): most clean controls stay clean
    clean = [len(detect(det, make_case("sub-c", seed))[1].clusters) == 0 for seed in range(70, 80)]
    assert sum(clean) >= 7, f"{name}: only {sum(clean)}/10 clean controls without a cluster (expected ~8.6)"


@pytest.fixture(scope="module")
def trained_nets():
    """Supervised nets trained long enough to learn the synthetic lesion, threshold calibrated on
    held-out controls (as `train_detector` does with its calibration split)."""
    train = cohort(n_controls=8, n_patients=10, seed=5)
    held_out = cohort(n_controls=6, n_patients=0, seed=40)
    torch.manual_seed(0)
    params = {"epochs": 30, "patch": 16, "samples_per_case": 4, "channels": [8, 16, 32], "mc_samples": 1,
              "normative_smooth": 2.0, "control_quantile": 1.0}
    nets = {}
    for name in ("unet", "hemis-unet"):
        det = get_detector(name)(registration="none", **params).fit(train)
        det.calibrate(held_out)
        nets[name] = det
    return nets


@pytest.mark.parametrize("name", ["unet", "hemis-unet"])
def test_supervised_nets_find_a_planted_lesion_at_rank_one_and_leave_controls_clean(trained_nets, name):
    det = trained_nets[name]
    assert 0.01 <= det.threshold_ <= 0.99  # calibrated on the held-out controls, not the raw 0.5
    for seed, centre in [(60, (9, 12, 12)), (61, (14, 9, 13))]:
        _, rec = detect(det, make_case("sub-p", seed, lesion_at=centre, amplitude=2.0, las=seed % 2 == 1))
        assert len(rec.clusters) >= 1 and rec.hits()[0], f"{name}: rank-1 cluster misses ({rec.clusters})"
    clean = [len(detect(det, make_case("sub-c", seed))[1].clusters) == 0 for seed in range(70, 80)]
    assert sum(clean) >= 7, f"{name}: only {sum(clean)}/10 clean controls without a cluster (expected ~8.6)"


def test_unsupervised_detectors_ignore_patients_when_fitting(cases):
    a = get_detector("zscore")(registration="none").fit(cases)
    b = get_detector("zscore")(registration="none").fit([c for c in cases if not c.is_patient])
    np.testing.assert_allclose(a.norm_.mean, b.norm_.mean)
    with pytest.raises(ValueError, match="controls only.*none of the 4 fitting subjects is a control"):
        get_detector("zscore")(registration="none").fit([c for c in cases if c.is_patient])


@pytest.mark.parametrize("name", ["hemis-unet", "unet"])
def test_missing_flair_does_not_crash(fitted, name):
    case = make_case("sub-noflair", 80, lesion_at=(12, 12, 12), modalities=("t1", "pet"), las=True)
    maps = fitted[name].predict(case)
    assert maps.prob.shape == case.volumes["t1"].shape
    assert np.isfinite(np.asarray(maps.prob.dataobj)).all()


def test_hemis_missing_modality_has_no_influence():
    torch.manual_seed(0)
    net = HeMISNet(3, (4, 8), dropout=0.0).eval()
    x = torch.randn(2, 3, 16, 16, 16)
    present = torch.tensor([[True, False, True], [True, False, False]])
    noisy = x.clone()
    noisy[:, 1] = 100 * torch.randn_like(noisy[:, 1])
    nan = x.clone()
    nan[:, 1] = float("nan")  # the fusion contract: an absent modality is replaced, never multiplied by 0
    with torch.no_grad():
        torch.testing.assert_close(net(x, present), net(noisy, present))
        torch.testing.assert_close(net(x, present), net(nan, present))
        # and a present modality does matter
        assert not torch.allclose(net(x, present), net(x, torch.ones(2, 3, dtype=torch.bool)))


def test_mc_dropout_maps_are_seeded_and_carry_uncertainty(fitted, monkeypatch):
    from fusemed.uncertainty import MCDropout

    det = fitted["hemis-unet"]
    det.params["mc_samples"] = 2  # (another test may have set 1)
    calls, call = [], MCDropout.__call__
    monkeypatch.setattr(MCDropout, "__call__",
                        lambda self, *a, **k: calls.append(self.n_samples) or call(self, *a, **k))
    case = make_case("sub-mc", 52, lesion_at=(12, 12, 12))
    a, b = det.predict(case), det.predict(case)
    assert calls and set(calls) == {2}  # the package's wrapper, not a copy of it
    np.testing.assert_array_equal(np.asarray(a.prob.dataobj), np.asarray(b.prob.dataobj))
    assert np.asarray(a.uncertainty.dataobj).max() > 0
    assert not any(m.training for m in det.net_.modules())  # the wrapper restores eval mode


def test_ae_score_ignores_a_missing_modality(fitted):
    det = fitted["ae"]
    x, present, fg = det.prepare(make_case("sub-noflair", 81, lesion_at=(12, 12, 12), modalities=("t1", "pet")))
    assert present.tolist() == [True, False, True]
    raw, unc = det._raw_score(x, present, fg)
    noisy = x.copy()
    noisy[1] = 100 * np.random.default_rng(0).standard_normal(x.shape[1:])  # whatever the absent channel holds
    raw_noisy, unc_noisy = det._raw_score(noisy, present, fg)
    np.testing.assert_array_equal(raw_noisy, raw)
    np.testing.assert_array_equal(unc_noisy, unc)
    # the presence flag is what hides it: flagged present, the same noise dominates the score
    assert det._raw_score(noisy, np.ones(3, bool), fg)[0].max() > 10 * raw.max()


def test_map_peak_outside_the_lesion_is_the_false_positive_peak(fitted):
    """What a patients-only threshold is calibrated on: the highest threshold with a cluster NOT overlapping
    the lesion, found from the top down (lower down, the false blob merges with the lesion's through a bridge)."""
    import nibabel as nib

    from fusemed.diagnosis import DetectionMaps
    from fusemed.diagnosis.detect import map_peak

    prob = np.zeros((24, 24, 24), np.float32)
    prob[4:9, 10:15, 10:15] = 0.9  # on the lesion
    prob[15:20, 10:15, 10:15] = 0.6  # a false positive
    prob[9:15, 11:14, 11:14] = 0.3  # a bridge: below 0.3 the two are one cluster, which hits the lesion
    lesion = np.zeros(prob.shape, bool)
    lesion[5:8, 11:14, 11:14] = True
    maps = DetectionMaps(nib.Nifti1Image(prob, np.diag([2.0, 2.0, 2.0, 1.0])), None)
    det = fitted["zscore"]
    assert map_peak(det, maps) == pytest.approx(0.9, abs=0.01)  # a control: any cluster
    assert map_peak(det, maps, lesion) == pytest.approx(0.6, abs=0.01)
    assert map_peak(det, maps, np.ones(prob.shape, bool)) == 0.0
