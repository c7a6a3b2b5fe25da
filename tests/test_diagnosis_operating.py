"""Matched operating points: FROC, sensitivity at fixed specificity / at <= 1 FP per patient, unscored
subjects as misses, thresholds calibrated on the grid where they are applied and never clipped silently."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from fusemed.diagnosis.clusters import volume_clusters
from fusemed.diagnosis.data import DetectionCase
from fusemed.diagnosis.detect import critical_thresholds, map_peak
from fusemed.diagnosis.detectors.base import DetectionMaps, Detector
from fusemed.diagnosis.metrics import SubjectDetection, detection_metrics
from fusemed.diagnosis.operating import (
    Sweep,
    default_thresholds,
    froc,
    operating_grid,
    operating_points,
    subject_outcomes,
    sweep,
    unscored,
)

T = np.array([0.1, 0.3, 0.5, 0.7, 0.9])


def _sw(subject, patient, detected, false, mri_negative=None):
    return Sweep(subject, patient, T, np.asarray(detected, bool), np.asarray(false, int), True, mri_negative)


def _cohort():
    patients = [
        _sw("p1", True, [1, 1, 1, 1, 0], [3, 2, 1, 0, 0], True),
        _sw("p2", True, [1, 1, 0, 0, 0], [2, 1, 0, 0, 0], False),
        unscored("p3", True, T, True),  # the detector could not read it: a miss everywhere
    ]
    # ten controls, each with one cluster up to its peak: specificity 0.6, 0.7, 0.8, 0.9, 0.9 over T
    controls = [_sw(f"c{k}", False, [0] * 5, [int(t < peak) for t in T], None)
                for k, peak in enumerate([0.05] * 6 + [0.2, 0.4, 0.6, 0.95])]
    return patients + controls + [unscored("c-x", False, T)]


def test_froc_counts_unscored_patients_as_misses_and_controls_at_subject_level():
    curve = froc(_cohort())
    np.testing.assert_allclose(curve["sensitivity"], [2 / 3, 2 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(curve["fp_per_patient"], [2.5, 1.5, 0.5, 0, 0])  # over scored patients
    # a control with any cluster above the threshold is a false positive; the unscored one is left out
    np.testing.assert_allclose(curve["specificity"], [0.6, 0.7, 0.8, 0.9, 0.9])
    np.testing.assert_allclose(curve["sensitivity_mri_negative"], [0.5, 0.5, 0.5, 0.5, 0])


def test_operating_points_take_the_most_sensitive_threshold_meeting_the_target():
    points, warnings = operating_points(froc(_cohort()))
    assert points["spec80"]["threshold"] == 0.5 and math.isclose(points["spec80"]["sensitivity"], 1 / 3)
    assert points["spec90"]["threshold"] == 0.7 and math.isclose(points["spec90"]["sensitivity"], 1 / 3)
    assert points["fp1"]["threshold"] == 0.5 and points["fp1"]["fp_per_patient"] <= 1
    assert warnings == []
    # an unreachable specificity is NaN with a warning, never the nearest point
    strict, warnings = operating_points(froc(_cohort()), specificities=(1.01,))
    assert math.isnan(strict["spec101"]["sensitivity"]) and "no threshold" in warnings[0]


def test_detection_metrics_keep_unscored_patients_in_the_denominator():
    lesion = np.zeros((4, 4, 4), bool)
    lesion[1:3, 1:3, 1:3] = True
    labels = lesion.astype(np.int32)
    table = pd.DataFrame({"cluster": [1], "rank": [1], "confidence": [0.9]})
    found = SubjectDetection("p1", True, table, labels, lesion, np.zeros(lesion.shape), False)
    skipped = SubjectDetection("p2", True, table.iloc[:0], np.zeros(0), None, None, True, scored=False)
    m = detection_metrics([found, skipped])
    assert m["sensitivity"] == 0.5 and m["n_patients"] == 2 and m["n_unscored_patients"] == 1


def test_sweep_reclusters_the_map_at_each_threshold():
    score = np.zeros((10, 10, 10), np.float32)
    score[1:4, 1:4, 1:4] = 0.8  # on the lesion
    score[6:9, 6:9, 6:9] = 0.4  # elsewhere
    lesion = np.zeros(score.shape, bool)
    lesion[2, 2, 2] = True
    s = sweep("p", True, T, lambda t: volume_clusters(score, np.eye(4), t, 8.0), lesion, float(score.max()))
    assert s.detected.tolist() == [True, True, True, True, False]
    assert s.false_clusters.tolist() == [1, 1, 0, 0, 0]


class _Fixed(Detector):
    """A detector whose maps are given: a test double for the calibration rule."""

    name = ""  # not registered

    def __init__(self, maps: dict[str, np.ndarray], affine: np.ndarray) -> None:
        super().__init__(modalities=("t1",), registration="none", min_size=8.0)
        self.maps, self.affine, self.threshold_ = maps, affine, 0.5

    def predict(self, case: DetectionCase) -> DetectionMaps:
        img = nib.Nifti1Image(self.maps[case.subject], self.affine)
        return DetectionMaps(img, img, "volume")


def _control(subject: str) -> DetectionCase:
    return DetectionCase(subject, {"t1": nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))}, label=0)


def test_threshold_is_calibrated_on_the_subject_grid_where_it_is_applied():
    """min_size is in mm^3: on a 2 mm subject grid a 1-voxel blob is 8 mm^3 (a cluster), on a 1 mm template
    grid it would not be. The calibrated threshold must make the right share of controls cluster-free
    on the maps as they are thresholded (the subject grid)."""
    rng = np.random.default_rng(0)
    maps = {f"c{k}": rng.uniform(0, 0.3, (12, 12, 12)).astype(np.float32) for k in range(10)}
    for k, level in enumerate(np.linspace(0.35, 0.8, 10)):
        maps[f"c{k}"][5, 5, 5] = level  # one voxel, 8 mm^3 at 2 mm
    det = _Fixed(maps, np.diag([2.0, 2.0, 2.0, 1.0]))
    controls = [_control(s) for s in maps]
    det.calibrate_threshold(controls, 0.8)
    free = [len(volume_clusters(maps[c.subject], det.affine, det.threshold_, det.min_size)[0]) == 0 for c in controls]
    assert 0.7 <= np.mean(free) <= 0.9, det.threshold_
    assert det.warnings_ == []
    assert math.isclose(map_peak(det, det.predict(controls[-1])), 0.8, abs_tol=1e-3)


def test_a_saturated_threshold_is_recorded_not_clipped():
    maps = {f"c{k}": np.ones((6, 6, 6), np.float32) for k in range(5)}  # every control saturates at 1.0
    det = _Fixed(maps, np.diag([2.0, 2.0, 2.0, 1.0]))
    det.calibrate_threshold([_control(s) for s in maps], 0.9)
    assert det.threshold_ > 0.99 and det.threshold_ != pytest.approx(0.99)
    assert any("cannot be reached" in w for w in det.warnings_)


def test_critical_thresholds_put_a_curve_point_where_each_control_turns_negative():
    """Ten controls whose one blob peaks between 0.46 and 0.54 (where 41 logit-spaced points are 0.07
    apart): on the fixed grid specificity jumps from below 0.8 to 1.0; with each control's critical
    threshold added, the curve reaches exactly 0.8 and 0.9, at the lowest threshold that does."""
    rng = np.random.default_rng(1)
    peaks = np.linspace(0.46, 0.54, 10)
    maps = {f"c{k}": rng.uniform(0, 0.2, (12, 12, 12)).astype(np.float32) for k in range(10)}
    for k, level in enumerate(peaks):
        maps[f"c{k}"][4:6, 4:6, 4:6] = level
    det = _Fixed(maps, np.diag([2.0, 2.0, 2.0, 1.0]))

    def curve(grid):
        sweeps = [sweep(s, False, grid, lambda t, s=s: volume_clusters(maps[s], det.affine, t, det.min_size),
                        None, float(maps[s].max())) for s in maps]
        return froc(sweeps)["specificity"].to_numpy()

    fixed = curve(default_thresholds())
    assert not np.isclose(fixed, 0.8).any() and not np.isclose(fixed, 0.9).any()
    critical = [t for s in maps for t in critical_thresholds(det, det.predict(_control(s)))]
    assert len(critical) == 10 and all(p - 1e-6 <= c < p + 0.01 for p, c in zip(peaks, sorted(critical), strict=True))
    grid = operating_grid(critical)
    assert np.all(np.diff(grid) > 0) and set(default_thresholds()) <= set(grid)
    spec = curve(grid)
    assert np.isclose(spec, 0.8).any() and np.isclose(spec, 0.9).any()
    first80 = grid[np.flatnonzero(spec >= 0.8 - 1e-12)[0]]
    assert peaks[7] - 1e-6 <= first80 < peaks[8]  # just above the 8th control's peak, not at the next fixed point


def test_a_patients_critical_thresholds_include_where_its_lesion_is_last_detected():
    score = np.zeros((10, 10, 10), np.float32)
    score[1:4, 1:4, 1:4] = 0.8  # on the lesion
    score[6:9, 6:9, 6:9] = 0.4  # elsewhere: a false positive
    lesion = np.zeros(score.shape, bool)
    lesion[2, 2, 2] = True
    det = _Fixed({"p": score}, np.eye(4))
    false_end, hit_end = critical_thresholds(det, det.predict(_control("p")), lesion)
    assert 0.4 <= false_end < 0.41 and 0.8 <= hit_end < 0.81


def test_subject_outcomes_at_each_point_add_up_to_the_curve():
    """The per-patient flags a paired comparison uses are the curve's own: their mean is the sensitivity
    read at that point, an unscored patient is a miss, controls carry their false clusters."""
    sweeps = _cohort()
    points, _ = operating_points(froc(sweeps))
    table = subject_outcomes(sweeps, points).set_index("subject")
    patients = ["p1", "p2", "p3"]
    for key, point in points.items():
        assert math.isclose(table.loc[patients, f"detected_at_{key}"].mean(), point["sensitivity"])
    assert table.loc["p3", "detected_at_spec80"] == 0.0 and math.isnan(table.loc["c9", "detected_at_spec80"])
    assert table.loc["c9", "false_clusters_at_spec80"] == 1.0 and table.loc["c0", "false_clusters_at_spec80"] == 0.0
    unreachable, _ = operating_points(froc(sweeps), specificities=(1.01,))
    assert subject_outcomes(sweeps, unreachable)["detected_at_spec101"].isna().all()
