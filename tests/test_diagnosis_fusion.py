"""`volume-surface`: either view may be missing, the state round-trips, and fusing two views that each
see a different half of the lesions finds more lesions than the better view alone."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from fusemed.diagnosis import DETECTORS, ClusterCalibrator, CommonGrid, DetectionCase, Detector, detect
from fusemed.diagnosis.detect import map_peak
from fusemed.diagnosis.detectors.fusion import FusedMaps
from fusemed.diagnosis.projection import Splat, mid_surface

SHAPE, SPACING = (24, 24, 24), 6.0  # a 138 mm field of view holding fsaverage5's lateral cortex
#: lesion sites: fsaverage5 vertices on the lateral cortex of both hemispheres
SITES = (5875, 13222, 9218, 14327, 2642, 14224)
RADIUS = 12.0
VIEWS = {"volume_params": {"epochs": 25, "lr": 5e-3, "patch": 16, "samples_per_case": 4, "channels": [8, 16, 32],
                           "mc_samples": 2, "normative_smooth": 6.0},
         "surface_params": {"epochs": 15, "hidden": 16, "layers": 2, "mc_samples": 2}}


def fusion_case(subject: str, seed: int, site: int | None = None, seen_by: str = "") -> DetectionCase:
    """A 6 mm head in template space with T1, FLAIR, cortex features (V, 3) and one lesion at `site`
    (a sphere of RADIUS mm around the vertex) that only the `seen_by` view shows: "volume" brightens
    T1 and FLAIR there, "surface" shifts the vertex features there; the truth masks hold it either way."""
    rng = np.random.default_rng(seed)
    affine = np.diag([SPACING, SPACING, SPACING, 1.0])
    affine[:3, 3] = -SPACING * (np.asarray(SHAPE) - 1) / 2
    xyz = np.indices(SHAPE).reshape(3, -1).T * SPACING + affine[:3, 3]
    brain = (np.linalg.norm(xyz / [75.0, 80.0, 70.0], axis=1) <= 1).reshape(SHAPE)
    coords = mid_surface()
    lesion = np.zeros(SHAPE, bool)
    vertex = np.zeros(len(coords), np.int8)
    if site is not None:
        lesion = (np.linalg.norm(xyz - coords[site], axis=1) <= RADIUS).reshape(SHAPE)
        vertex = (np.linalg.norm(coords - coords[site], axis=1) <= RADIUS).astype(np.int8)
    vols = {}
    for m, base in (("t1", 100.0), ("flair", 60.0)):
        data = brain * base * (1 + 0.05 * rng.standard_normal(SHAPE))
        vols[m] = nib.Nifti1Image((data + (seen_by == "volume") * lesion * 1.0 * base).astype(np.float32), affine)
    feats = rng.standard_normal((len(coords), 3)).astype(np.float32)
    feats[vertex > 0] += 3.0 * (seen_by == "surface")
    return DetectionCase(subject, vols, lesion=nib.Nifti1Image(lesion.astype(np.uint8), affine),
                         label=int(site is not None), surface=feats, vertex_labels=vertex)


def cases(n_patients: int, n_controls: int, seed: int) -> list[DetectionCase]:
    """Patients alternate between a lesion only the volume sees and one only the surface sees."""
    out = [fusion_case(f"sub-c{seed + i}", seed + i) for i in range(n_controls)]
    out += [fusion_case(f"sub-p{seed + i}", seed + 100 + i, SITES[i % len(SITES)], ("volume", "surface")[i % 2])
            for i in range(n_patients)]
    return out


@pytest.fixture(scope="module")
def fused() -> Detector:
    torch.manual_seed(0)
    det = DETECTORS["volume-surface"](modalities=["t1", "flair"], spacing=SPACING, registration="none",
                                      stack_fraction=0.35, control_quantile=1.0,
                                      trainer={"accelerator": "cpu", "progress": False}, **VIEWS)
    return det.fit(cases(12, 6, seed=0))


@pytest.fixture(scope="module")
def test_cases() -> list[DetectionCase]:
    return cases(6, 4, seed=50)


def test_vertex_values_land_on_the_voxels_around_those_vertices():
    coords = mid_surface()
    like = nib.Nifti1Image(np.zeros((40, 48, 40), np.float32), np.diag([4.0, 4.0, 4.0, 1.0]) @ np.r_[
        np.c_[np.eye(3), [-20.0, -26.0, -14.0]], [[0, 0, 0, 1]]])  # a 4 mm subject grid, not the common one
    splat = Splat.build(CommonGrid.covering(like, 3.0), coords, radius=6.0)
    hot = (np.linalg.norm(coords - coords[SITES[0]], axis=1) <= RADIUS).astype(float)
    shift = np.eye(4)
    shift[:3, 3] = [8.0, -10.0, 6.0]  # subject -> template: the subject sits 14 mm off template space
    (value,), ribbon = splat.to_subject(hot[None], like, shift)
    assert 0.05 < ribbon.mean() < 0.6  # a ribbon, not the whole box
    ijk = np.argwhere(value > 0.5)
    world = ijk @ like.affine[:3, :3].T + like.affine[:3, 3] + shift[:3, 3]  # back in template mm
    assert len(ijk) and np.linalg.norm(world.mean(0) - coords[SITES[0]]) < 4.0
    assert np.linalg.norm(world - coords[SITES[0]], axis=1).max() < RADIUS + 6.0 + 4.0


def test_fit_records_the_fusion_rule_and_the_cluster_confidence(fused, tmp_path):
    assert set(fused.stack_) == {"both", "volume", "surface"}
    both = fused.decisions_["fusion"]["both"]
    assert both["coef"] is not None and both["n_positive"] > 0  # fitted on held-out lesion voxels
    assert "held out of the fit split" in fused.decisions_["fusion_split"]
    assert "cluster_confidence" in fused.decisions_
    cfg = json.loads((fused.save(tmp_path / "d") / "config.json").read_text())
    assert cfg["state"]["fusion"]["both"]["features"] == both["features"]
    assert cfg["state"]["confidence"]["features"][0] == "logit_peak"


def test_either_view_missing_still_gives_maps_on_the_subject_grid(fused):
    no_surface = fusion_case("sub-x", 900, SITES[0], "volume")
    no_surface.surface = None
    no_volume = fusion_case("sub-y", 901, SITES[1], "surface")
    no_volume.volumes = {}  # the lesion mask still fixes the subject's grid
    for case, view in ((no_surface, "volume"), (no_volume, "surface")):
        assert fused.covers(case)
        maps = fused.predict(case)
        assert isinstance(maps, FusedMaps) and set(maps.view_sd) == {view}
        prob = np.asarray(maps.prob.dataobj)
        assert prob.shape == case.lesion.shape and np.allclose(maps.prob.affine, case.lesion.affine)
        assert np.isfinite(prob).all() and 0 <= prob.min() and prob.max() <= 1
        _, rec = detect(fused, case, ClusterCalibrator().fit(np.array([]), np.array([])))
        assert len(rec.clusters) and rec.hits()[0], f"{view} only: the rank-1 cluster misses ({rec.clusters})"
        conf = rec.clusters["confidence"].to_numpy(float)
        assert np.isfinite(conf).all() and ((0 <= conf) & (conf <= 1)).all()
        # the detector's own rule (peak + each view's uncertainty), not the run's peak-only calibrator
        assert np.allclose(conf, fused.cluster_confidence(maps, rec.clusters, rec.labels))


def test_misspelt_view_or_view_parameter_is_refused_at_construction():
    klass = DETECTORS["volume-surface"]
    with pytest.raises(ValueError, match="did you mean .hemis-unet"):
        klass(volume="hemis-unte")
    with pytest.raises(ValueError, match="epoch"):
        klass(surface_params={"epoch": 3})
    with pytest.raises(ValueError, match="volume detector"):
        klass(volume="surface-gnn")


def test_each_view_trains_in_its_own_workdir_and_a_rerun_resumes(tmp_path):
    """A killed fusion run resumes view by view: a rerun into the same workdir trains nothing again."""
    quick = {k: {**v, "epochs": 2} for k, v in VIEWS.items()}
    make = DETECTORS["volume-surface"]
    args = {"modalities": ["t1", "flair"], "spacing": SPACING, "registration": "none", "stack_fraction": 0.35,
            "trainer": {"accelerator": "cpu", "progress": False}, **quick}
    train, case = cases(4, 4, seed=7), fusion_case("sub-z", 999, SITES[2], "volume")
    first = make(**args).fit(train, workdir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"volume", "surface"}
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.ckpt")}
    again = make(**args).fit(train, workdir=tmp_path)
    assert len(stamps) == 2 and all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # nothing retrained
    assert np.array_equal(np.asarray(first.predict(case).prob.dataobj), np.asarray(again.predict(case).prob.dataobj))


def test_save_load_round_trip_gives_identical_maps(fused, test_cases, tmp_path):
    loaded = Detector.load(fused.save(tmp_path / "det"))
    assert loaded.threshold_ == fused.threshold_ and loaded.decisions_ == json.loads(json.dumps(fused.decisions_))
    case = test_cases[-1]
    a, b = fused.predict(case), loaded.predict(case)
    assert np.array_equal(np.asarray(a.prob.dataobj), np.asarray(b.prob.dataobj))
    assert np.array_equal(np.asarray(a.uncertainty.dataobj), np.asarray(b.uncertainty.dataobj))


def _found(det: Detector, cases_: list[DetectionCase]) -> list[bool]:
    """Per patient: its lesion's peak beats every false-positive cluster, its own and the controls'
    (detection at specificity 1 on these controls, so each map is read at its own matched point)."""
    def truth(case: DetectionCase) -> np.ndarray:
        return (np.asarray(case.vertex_labels) if det.space == "surface" else np.asarray(case.lesion.dataobj)) > 0

    def values(maps) -> np.ndarray:
        return np.asarray(maps.prob if maps.space == "surface" else maps.prob.dataobj, float)

    controls = [c for c in cases_ if not c.is_patient]
    floor = max(map_peak(det, det.predict(c)) for c in controls)
    found = []
    for case in (c for c in cases_ if c.is_patient):
        maps, lesion = det.predict(case), truth(case)
        found.append(values(maps)[lesion].max() > max(floor, map_peak(det, maps, lesion)))
    return found


def test_fusion_finds_what_either_view_alone_finds(fused, test_cases):
    """Half the lesions are visible to the volume only, half to the surface only: each view alone finds
    about its half, the fusion at least as many as the better one (here: both halves)."""
    volume, surface, both = (_found(d, test_cases) for d in (fused.volume_, fused.surface_, fused))
    assert sum(both) >= max(sum(volume), sum(surface)), (volume, surface, both)
    assert sum(both) >= len(both) - 1, f"fusion found {both} (volume {volume}, surface {surface})"
