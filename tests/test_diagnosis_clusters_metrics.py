"""Clusters, confidence calibration and the detection metrics on hand-made maps with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusemed.diagnosis.clusters import ClusterCalibrator, surface_clusters, volume_clusters
from fusemed.diagnosis.metrics import SubjectDetection, detection_metrics, ece, split_metrics
from fusemed.models.mesh import mesh_from_faces

LAS = np.array([[-2.0, 0, 0, 40], [0, 2, 0, -20], [0, 0, 2, 0], [0, 0, 0, 1]])


def _map() -> np.ndarray:
    s = np.zeros((20, 20, 20), np.float32)
    s[2:5, 2:5, 2:5] = 0.7          # 27 voxels, peak 0.7
    s[10:14, 10:14, 10:14] = 0.8    # 64 voxels
    s[11, 11, 11] = 0.95            # peak 0.95: rank 1
    s[18, 18, 18] = 0.99            # 1 voxel: below the minimum size
    return s


def test_volume_clusters_rank_by_peak_drop_small_and_report_mm():
    table, labels = volume_clusters(_map(), LAS, threshold=0.5, min_size_mm3=8 * 8)
    assert list(table["rank"]) == [1, 2]
    assert list(table["size"]) == [64, 27]
    np.testing.assert_allclose(table["size_mm"], [64 * 8.0, 27 * 8.0])
    np.testing.assert_allclose(table.loc[0, "peak_score"], 0.95)
    assert labels[18, 18, 18] == 0 and labels[11, 11, 11] == 1 and labels[3, 3, 3] == 2
    centre = LAS @ np.array([11.5, 11.5, 11.5, 1])  # world centroid through the LAS affine
    np.testing.assert_allclose(table.loc[0, ["x_mm", "y_mm", "z_mm"]].to_numpy(float), centre[:3])


def test_surface_clusters_follow_mesh_edges():
    # a strip of 6 triangles over 8 vertices: 0-1-2-3 on top, 4-5-6-7 below
    coords = np.array([[i, 0, 0] for i in range(4)] + [[i, 1, 0] for i in range(4)], float)
    faces = np.array([[0, 1, 4], [1, 5, 4], [1, 2, 5], [2, 6, 5], [2, 3, 6], [3, 7, 6]])
    mesh = mesh_from_faces(coords, faces)
    score = np.array([0.9, 0.8, 0, 0.6, 0.7, 0, 0, 0.65])
    table, labels = surface_clusters(score, mesh.adjacency, mesh.coords, 0.5, min_size=2)
    assert list(table["size"]) == [3, 2]
    assert set(np.flatnonzero(labels == 1)) == {0, 1, 4} and set(np.flatnonzero(labels == 2)) == {3, 7}


def test_calibrator_is_monotone_round_trips_and_raises_unfitted():
    with pytest.raises(RuntimeError, match="before fit"):
        ClusterCalibrator()(np.array([0.5]))
    rng = np.random.default_rng(0)
    peaks = rng.random(400)
    hits = (rng.random(400) < peaks).astype(float)
    for method in ("isotonic", "platt"):
        cal = ClusterCalibrator(method).fit(peaks, hits)
        grid = np.linspace(0, 1, 11)
        out = cal(grid)
        assert np.all(np.diff(out) >= -1e-12) and out[0] < 0.25 and out[-1] > 0.75
        np.testing.assert_allclose(ClusterCalibrator.from_json(cal.to_json())(grid), out)
    assert ClusterCalibrator().fit(np.array([0.9, 0.8]), np.array([0.0, 0.0]))(np.array([0.99]))[0] == 0


def _record(subject, patient, n_clusters, lesion_cluster=None, near_cluster=None, mri_negative=None):
    """A 1D toy: 100 'voxels' at 1 mm, clusters of 3 voxels every 10 mm, lesion at voxels 50..52."""
    labels = np.zeros(100, np.int32)
    for k in range(1, n_clusters + 1):
        labels[10 * k:10 * k + 3] = k
    lesion = dist = None
    if patient:
        lesion = np.zeros(100, bool)
        lesion[50:53] = True
        dist = np.abs(np.arange(100) - 51.0) - 1
        labels[(labels > 0) & lesion] = 0
        if lesion_cluster is not None:
            labels[50:53] = lesion_cluster
        if near_cluster is not None:
            labels[65:67] = near_cluster  # ~13 mm away
    table = pd.DataFrame({"cluster": np.arange(1, n_clusters + 1), "rank": np.arange(1, n_clusters + 1),
                          "confidence": np.linspace(0.9, 0.1, n_clusters) if n_clusters else []})
    return SubjectDetection(subject, patient, table, labels, lesion, dist, mri_negative)


def test_detection_metrics_follow_meld_and_prototype_protocols():
    results = [
        _record("p1", True, 3, lesion_cluster=1, mri_negative=True),     # found, rank 1, 2 FPs
        _record("p2", True, 6, lesion_cluster=6, mri_negative=False),    # found at rank 6: not top-5
        _record("p3", True, 2, near_cluster=2, mri_negative=True),       # missed, but within 20 mm
        _record("c1", False, 0),
        _record("c2", False, 1),
    ]
    m = detection_metrics(results)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["sensitivity_margin20"] == pytest.approx(1.0)
    assert m["specificity"] == pytest.approx(0.5)
    assert m["top1"] == pytest.approx(1 / 3) and m["top5"] == pytest.approx(1 / 3)
    assert m["fp_per_patient"] == pytest.approx((2 + 5 + 2) / 3)
    assert m["ppv"] == pytest.approx(2 / 11)
    # Dice of the union of ALL clusters with the lesion: p1 12 cluster voxels, p2 18, 3 lesion voxels each
    assert m["dice"] == pytest.approx((6 / 15 + 6 / 21 + 0.0) / 3)
    s = split_metrics(results)
    assert s["mri_negative"]["sensitivity"] == pytest.approx(0.5)
    assert s["mri_visible"]["sensitivity"] == pytest.approx(1.0)
    assert s["mri_negative"]["n_controls"] == 2


def test_ece_of_perfectly_calibrated_bins_is_zero_and_of_overconfidence_positive():
    conf = np.array([0.25] * 4 + [0.75] * 4)
    correct = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert ece(conf, correct) == pytest.approx(0.0)
    assert ece(np.full(4, 0.9), np.zeros(4)) == pytest.approx(0.9)


def test_cluster_peak_ignores_isolated_voxels_smaller_than_the_minimum_cluster():
    from fusemed.diagnosis.clusters import cluster_peak

    score = np.zeros((20, 20, 20))
    score[5:9, 5:9, 5:9] = 0.6  # 64 voxels
    score[15, 15, 15] = 0.9  # one hot voxel: no cluster of 8 voxels at any threshold above 0.6
    assert cluster_peak(score, 8) == pytest.approx(0.6, abs=1e-3)
    assert cluster_peak(score, 1) == pytest.approx(0.9, abs=1e-3)
    assert cluster_peak(score, 65) == 0.0
    # consistent with volume_clusters: just above the peak there is no cluster, just below there is one
    t = cluster_peak(score, 8)
    assert len(volume_clusters(score, np.eye(4), t + 1e-3, 8)[0]) == 0
    assert len(volume_clusters(score, np.eye(4), t - 1e-3, 8)[0]) == 1
