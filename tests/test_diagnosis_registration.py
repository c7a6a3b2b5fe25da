"""Registration to MNI152: a known head pose is recovered, and a detector working in template space
finds a lesion planted in scanner space where it was planted, with maps on the subject's own grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_img
from scipy.spatial.transform import Rotation

from fusemed.diagnosis import DetectionCase, detect, get_detector
from fusemed.diagnosis.grid import CommonGrid
from fusemed.diagnosis.registration import mni_template, register_to_template


def pose(deg: tuple[float, float, float], shift: tuple[float, float, float], scale: float) -> np.ndarray:
    """(4, 4) world transform: rotate (degrees about x, y, z), scale, then shift (mm)."""
    a = np.eye(4)
    a[:3, :3] = Rotation.from_euler("xyz", deg, degrees=True).as_matrix() * scale
    a[:3, 3] = shift
    return a


def scanner_image(a: np.ndarray, spacing: float = 4.0, las: bool = False, lesion_mm=None,
                  seed: int = 0) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """The template brain seen by a scanner whose world is the template's moved by `a`, on a
    `spacing` mm grid (LAS voxel order if asked), with optional bright sphere at template mm `lesion_mm`."""
    tpl = mni_template()
    data = np.asarray(tpl.dataobj, dtype=np.float32)
    rng = np.random.default_rng(seed)
    data = data * (1 + 0.03 * rng.standard_normal(data.shape)).astype(np.float32)
    mask = np.zeros(data.shape, np.float32)
    if lesion_mm is not None:
        ijk = np.indices(data.shape).reshape(3, -1)
        xyz = (tpl.affine[:3, :3] @ ijk + tpl.affine[:3, 3:4]).T
        mask = (np.linalg.norm(xyz - np.asarray(lesion_mm), axis=1) < 9).reshape(data.shape).astype(np.float32)
        data = data * (1 + 0.6 * mask)
    moved = [nib.Nifti1Image(v, a @ tpl.affine) for v in (data, mask)]
    target = np.diag([spacing, spacing, spacing, 1.0])
    target[:3, 3] = (a @ np.r_[-100.0, -136.0, -80.0, 1])[:3] - 10
    shape = (54, 62, 50)
    if las:
        target[0, 0] = -spacing
        target[0, 3] += spacing * (shape[0] - 1)
    out = [resample_img(m, target_affine=target, target_shape=shape, interpolation=interp, force_resample=True,
                        copy_header=True) for m, interp in zip(moved, ("linear", "nearest"), strict=True)]
    return nib.Nifti1Image(np.asarray(out[0].dataobj, np.float32), target), \
        nib.Nifti1Image((np.asarray(out[1].dataobj) > 0.5).astype(np.uint8), target)


@pytest.mark.parametrize("las", [False, True])
def test_known_head_pose_is_recovered(las):
    a = pose((4.0, -3.0, 6.0), (6.0, -5.0, 4.0), 1.05)
    img, _ = scanner_image(a, las=las)
    t = register_to_template(img)
    corners = np.array([[x, y, z, 1.0] for x in (-50, 50) for y in (-70, 40) for z in (-30, 50)]).T
    err = np.linalg.norm((t @ a @ corners - corners)[:3], axis=0)
    assert err.max() < 3.0, f"registration error up to {err.max():.1f} mm"


def test_grid_round_trip_through_a_world_transform():
    a = pose((0.0, 0.0, 8.0), (3.0, 2.0, -4.0), 1.0)
    img, _ = scanner_image(a)
    grid = CommonGrid.covering(mni_template(), 4.0)
    on_grid = grid.resample(img, world=np.linalg.inv(a))
    tpl_on_grid = grid.resample(mni_template())
    inside = tpl_on_grid > 0.2 * tpl_on_grid.max()
    r_aligned = np.corrcoef(on_grid[inside], tpl_on_grid[inside])[0, 1]
    r_scanner = np.corrcoef(grid.resample(img)[inside], tpl_on_grid[inside])[0, 1]
    assert r_aligned > 0.8 and r_scanner < 0.6  # back in template space (4 mm resampling costs ~0.1)
    back = np.asarray(grid.back(on_grid, img, world=np.linalg.inv(a)).dataobj)
    ref = np.asarray(img.dataobj)
    brain = ref > 0.2 * ref.max()
    assert back.shape == ref.shape and np.corrcoef(back[brain], ref[brain])[0, 1] > 0.8


def test_detector_in_template_space_finds_a_lesion_planted_in_scanner_space():
    rng = np.random.default_rng(3)

    def random_pose() -> np.ndarray:
        return pose(tuple(rng.normal(0, 3, 3)), tuple(rng.normal(0, 4, 3)), float(rng.normal(1, 0.03)))

    controls = []
    for i in range(8):
        img, mask = scanner_image(random_pose(), las=i % 2 == 1, seed=i)
        controls.append(DetectionCase(f"c{i}", {"t1": img}, lesion=mask, label=0))
    det = get_detector("zscore")(modalities=["t1"], spacing=4.0, smooth=4.0, holdout=0.25,
                                 control_quantile=1.0).fit(controls)
    a = random_pose()
    lesion_mm = np.array([-30.0, 20.0, 30.0])  # left frontal, in template mm
    img, mask = scanner_image(a, las=True, lesion_mm=lesion_mm, seed=99)
    maps, rec = detect(det, DetectionCase("p", {"t1": img}, lesion=mask, label=1))
    assert maps.prob.shape == img.shape and np.allclose(maps.prob.affine, img.affine)
    assert len(rec.clusters) >= 1 and rec.hits()[0], rec.clusters
    top = rec.clusters.iloc[0][["x_mm", "y_mm", "z_mm"]].to_numpy(float)
    assert np.linalg.norm(top - (a @ np.r_[lesion_mm, 1])[:3]) < 10  # scanner mm, where it was planted


def test_subject_without_the_reference_modality_registers_its_other_volume():
    """A control without T1: registration uses its FLAIR, never the empty lesion mask that stands in
    for the output grid (the 'total mass of the image was zero' crash at 30 % missing)."""
    a = pose((2.0, 0.0, -3.0), (4.0, 3.0, -2.0), 1.0)
    img, mask = scanner_image(a)
    det = get_detector("zscore")(modalities=["t1", "flair"], spacing=4.0)
    case = DetectionCase("c", {"flair": img}, reference="t1", lesion=mask, label=0)
    assert case.reference_image is mask  # the output grid comes from the mask ...
    t = det.world(case)  # ... but the registration from the FLAIR
    corners = np.array([[x, y, z, 1.0] for x in (-50, 50) for y in (-70, 40) for z in (-30, 50)]).T
    assert np.linalg.norm((t @ a @ corners - corners)[:3], axis=0).max() < 3.0
    empty = DetectionCase("e", {"flair": nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), np.eye(4))})
    with pytest.raises(ValueError, match="subject e: affine registration of its 'flair'"):
        det.world(empty)
