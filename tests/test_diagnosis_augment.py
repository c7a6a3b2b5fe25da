"""Patch augmentation of the supervised voxel detectors: the image and its lesion mask move together,
the mask stays binary, and the same seed gives the same patch (what an exact resume relies on)."""

from __future__ import annotations

import torch

from fusemed.diagnosis.augment import PatchAugment


def _patch() -> torch.Tensor:
    mask = torch.zeros(1, 16, 16, 16)
    mask[0, 2:7, 5:11, 5:11] = 1.0  # off-centre in the left-right axis: mirroring moves it
    return torch.cat([mask * 3.0, torch.ones(1, 16, 16, 16), mask])


def test_mask_follows_the_image_and_stays_binary():
    aug, patch = PatchAugment(), _patch()
    moved_any = False
    for seed in range(40):
        out = aug(patch, seed)
        assert out.shape == patch.shape
        assert set(out[-1].unique().tolist()) <= {0.0, 1.0}
        lesion_like = out[0] > 1.5  # the image's bright cube, wherever the spatial transforms took it
        agree = (lesion_like == (out[-1] > 0.5)).float().mean()
        assert agree > 0.97, (seed, float(agree))
        moved_any |= not torch.equal(out[-1], patch[-1])
    assert moved_any  # some draws mirror or rotate


def test_same_seed_same_patch_and_the_input_is_untouched():
    aug, patch = PatchAugment(), _patch()
    before = patch.clone()
    assert torch.equal(aug(patch, 7), PatchAugment()(patch, 7))
    assert torch.equal(patch, before)
