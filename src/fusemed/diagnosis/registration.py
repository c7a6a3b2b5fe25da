"""Affine registration of a subject to the MNI152 template (SimpleITK), as a 4x4 world transform.

Per-location models (a normative mean and sd per voxel, one OC-SVM per region) compare the SAME
anatomical location across subjects, so heads must be brought into one space first; the prototype
and MELD both work in template space. Scanner space differs by head pose, brain size and
orientation (several mm at the cortex, larger than a subtle lesion), so we estimate a 12-parameter
affine from the subject's reference volume to nilearn's bundled MNI152 2009 template (Mattes mutual
information, so T1, FLAIR or PET may serve as reference), two resolution levels, about 0.5 s.

The result is a plain (4, 4) matrix in RAS mm (subject world -> template world): images never get
resampled twice, because `CommonGrid` folds it into the affines it hands to nilearn.
"""

from __future__ import annotations

import functools
import logging

import nibabel as nib
import numpy as np
import SimpleITK as sitk

log = logging.getLogger(__name__)

_LPS = np.diag([-1.0, -1.0, 1.0])  # ITK physical space is LPS, NIfTI world is RAS


@functools.lru_cache(maxsize=1)
def mni_template() -> nib.Nifti1Image:
    """nilearn's MNI152 2009 T1 template at 2 mm (shipped with nilearn, nothing downloaded)."""
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=2)


def to_sitk(img: nib.Nifti1Image) -> sitk.Image:
    """A 3D NIfTI image as a SimpleITK image with the same world geometry (any orientation)."""
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"expected a 3D image, got shape {data.shape}")
    out = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    a = img.affine[:3, :3]
    spacing = np.sqrt((a ** 2).sum(0))
    out.SetSpacing(spacing.tolist())
    out.SetDirection((_LPS @ a / spacing).ravel().tolist())
    out.SetOrigin((_LPS @ img.affine[:3, 3]).tolist())
    return out


def _as_ras_matrix(tx: sitk.Transform) -> np.ndarray:
    """The (4, 4) RAS matrix of an affine ITK transform (read off by mapping four points)."""
    pts = np.array([[0.0, 0, 0], [100.0, 0, 0], [0, 100.0, 0], [0, 0, 100.0]])
    mapped = np.array([tx.TransformPoint(tuple(p)) for p in pts])
    lin = ((mapped[1:] - mapped[0]) / 100.0).T
    lps = np.eye(4)
    lps[:3, :3], lps[:3, 3] = lin, mapped[0]
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ lps @ flip


def register_to_template(img: nib.Nifti1Image, template: nib.Nifti1Image | None = None,
                         iterations: int = 200, seed: int = 0) -> np.ndarray:
    """(4, 4) affine mapping `img`'s world mm (RAS) to `template`'s world mm (MNI152 by default).

    Initialised by matching intensity moments (centre of mass and principal axes), then Mattes
    mutual information with regular-step gradient descent at 1/4 and 1/2 resolution. Deterministic
    for a given `seed` (the metric samples voxels at random).
    """
    fixed = sitk.Cast(to_sitk(template if template is not None else mni_template()), sitk.sitkFloat32)
    moving = sitk.Cast(to_sitk(img), sitk.sitkFloat32)
    init = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(3),
                                             sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.1, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=iterations)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2])
    reg.SetSmoothingSigmasPerLevel([2, 1])
    reg.SetInitialTransform(init, inPlace=False)
    tx = reg.Execute(fixed, moving)  # maps template points to subject points (ITK convention)
    log.debug("registration: %s", reg.GetOptimizerStopConditionDescription())
    return np.linalg.inv(_as_ras_matrix(tx))
