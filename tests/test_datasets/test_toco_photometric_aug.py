# Copyright (c) OpenMMLab. All rights reserved.
import random

import numpy as np
import torch

from mmseg_wsss.datasets.transforms import ToCoPhotometricAug


def _img():
    rng = np.random.default_rng(0)
    img = np.zeros((32, 40, 3), np.uint8)
    img[:, 20:] = (30, 120, 220)  # BGR
    return img + rng.integers(0, 20, img.shape, dtype=np.uint8)


def test_all_off_is_identity():
    t = ToCoPhotometricAug(jitter_prob=0, gray_prob=0, blur_prob=0)
    img = _img()
    np.testing.assert_array_equal(t(dict(img=img.copy()))['img'], img)


def test_grayscale_equal_channels_and_bgr_kept():
    t = ToCoPhotometricAug(jitter_prob=0, gray_prob=1, blur_prob=0)
    out = t(dict(img=_img()))['img']
    assert out.dtype == np.uint8 and out.shape == (32, 40, 3)
    assert (out[..., 0] == out[..., 1]).all() and \
        (out[..., 1] == out[..., 2]).all()


def test_blur_always_smooths_and_is_seeded():
    t = ToCoPhotometricAug(jitter_prob=0, gray_prob=0, blur_prob=1,
                           blur_radius=(1.5, 2.0))
    img = _img()
    out = t(dict(img=img.copy()))['img'].astype(float)
    # blur lowers the horizontal gradient energy
    assert np.abs(np.diff(out, axis=1)).sum() < \
        np.abs(np.diff(img.astype(float), axis=1)).sum()
    outs = []
    for _ in range(2):
        random.seed(3)
        torch.manual_seed(3)
        outs.append(ToCoPhotometricAug()(dict(img=img.copy()))['img'])
    np.testing.assert_array_equal(outs[0], outs[1])


def test_jitter_changes_colours_in_rgb_order():
    t = ToCoPhotometricAug(jitter=(0, 0, 0, 0.5), jitter_prob=1,
                           gray_prob=0, blur_prob=0)
    torch.manual_seed(0)
    img = _img()
    out = t(dict(img=img.copy()))['img']
    assert not np.array_equal(out, img)
