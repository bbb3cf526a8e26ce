# Copyright (c) OpenMMLab. All rights reserved.
"""Extra views of a training image: RandomResizedCrop, AddView, the
solarize option of ToCoPhotometricAug, and their packing."""
import random

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose

from mmseg_wsss.datasets.transforms import (AddView, PackWSSSInputs,
                                            RandomResizedCrop,
                                            ToCoPhotometricAug)


def _results(h=40, w=60, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    seg = rng.integers(0, 5, (h, w), dtype=np.uint8)
    return dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        gt_seg_map=seg,
        seg_fields=['gt_seg_map'],
        gt_cls_label=np.array([1, 0, 1], dtype=np.float32),
        img_path='x.jpg',
        img_box=[0, h, 0, w])


def test_random_resized_crop_size_scale_and_nearest_labels():
    t = RandomResizedCrop(size=(24, 32), scale=(0.32, 1.0))
    random.seed(0)
    for _ in range(50):
        top, left, h, w = t.get_params(40, 60)
        assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 60
        frac = h * w / (40 * 60)
        # Rounding h and w moves the area fraction a little off the range.
        assert 0.32 * 0.85 <= frac <= 1.0
    out = t(_results())
    assert out['img'].shape == (24, 32, 3) and out['img'].dtype == np.uint8
    assert out['img_shape'] == (24, 32)
    assert out['gt_seg_map'].shape == (24, 32)
    # Nearest resizing keeps label values.
    assert set(np.unique(out['gt_seg_map'])) <= set(range(5))
    assert 'img_box' not in out  # a crop inside the image has no padding
    with pytest.raises(ValueError):
        RandomResizedCrop(size=24, interpolation='area')


def test_random_resized_crop_fallback_is_central():
    t = RandomResizedCrop(size=8, scale=(2.0, 3.0))  # never fits: fallback
    assert t.get_params(40, 60) == (0, 3, 40, 53)  # ratio 4/3 centred


def test_add_view_appends_independent_views_and_leaves_the_image():
    res = _results()
    img = res['img'].copy()
    seg = res['gt_seg_map'].copy()
    view = [
        dict(type='RandomResizedCrop', size=16, scale=(0.4, 1.0)),
        dict(type='RandomFlip', prob=1.0)
    ]
    random.seed(1)
    res = AddView(transforms=view)(res)
    res = AddView(transforms=view)(res)
    assert np.array_equal(res['img'], img)
    assert np.array_equal(res['gt_seg_map'], seg)
    assert res['img_box'] == [0, 40, 0, 60]  # the copy's crop did not leak
    assert len(res['views']) == 2
    assert all(v.shape == (16, 16, 3) for v in res['views'])
    assert not np.array_equal(res['views'][0], res['views'][1])
    # A photometric-only view stays pixel-aligned with the image.
    res = AddView(transforms=[dict(type='RandomFlip', prob=1.0)])(res)
    assert np.array_equal(res['views'][2], img[:, ::-1])


def test_random_resized_crop_labels_of_any_dtype_match_pil_nearest():
    import mmcv
    seg = _results()['gt_seg_map']
    ref = mmcv.imresize(
        seg, (29, 17), interpolation='nearest', backend='pillow')
    for dtype in (np.uint8, np.int32, np.int64, np.float32):
        out = RandomResizedCrop._resize_nearest(seg.astype(dtype), 17, 29)
        assert out.dtype == dtype
        assert np.array_equal(out, ref.astype(dtype))


def test_add_view_edits_in_place_do_not_leak():

    class EditInPlace:

        def __call__(self, results):
            results['img_box'][0] = 99
            results['img'][...] = 0
            results['gt_seg_map'][...] = 0
            return results

    res = _results()
    img, seg = res['img'].copy(), res['gt_seg_map'].copy()
    res = AddView(transforms=[EditInPlace()])(res)
    assert res['img_box'] == [0, 40, 0, 60]
    assert np.array_equal(res['img'], img)
    assert np.array_equal(res['gt_seg_map'], seg)
    assert not res['views'][0].any()


def test_add_view_rejects_a_bad_view():

    class Gray:

        def __call__(self, results):
            results['img'] = results['img'][..., 0]
            return results

    with pytest.raises(ValueError, match='H x W x 3'):
        AddView(transforms=[Gray()])(_results())


def test_solarize_option():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, 2)
    off = dict(jitter_prob=0., gray_prob=0., blur_prob=0.)
    out = ToCoPhotometricAug(**off, solarize_prob=1.0)(dict(img=img.copy()))
    expected = np.where(img >= 128, 255 - img, img)
    assert np.array_equal(out['img'], expected)
    # solarize_prob=0 draws no random number: bit-exact the old recipe.
    random.seed(3)
    torch.manual_seed(3)
    a = ToCoPhotometricAug()(dict(img=_results()['img']))['img']
    random.seed(3)
    torch.manual_seed(3)
    b = ToCoPhotometricAug(solarize_prob=0.)(
        dict(img=_results()['img']))['img']
    assert np.array_equal(a, b)
    assert 'solarize_prob=0.0' in repr(ToCoPhotometricAug())


def test_pack_views_and_a_whole_pipeline():
    pipeline = Compose([
        AddView(transforms=[
            dict(type='RandomResizedCrop', size=24, scale=(0.4, 1.0)),
            dict(type='RandomFlip', prob=0.5),
            dict(type='ToCoPhotometricAug', blur_prob=0.1, solarize_prob=0.2)
        ]),
        RandomResizedCrop(size=24, scale=(0.32, 1.0)),
        AddView(transforms=[dict(type='ToCoPhotometricAug', blur_prob=0.5)]),
        PackWSSSInputs()
    ])
    out = pipeline(_results())
    views = out['data_samples'].views
    assert views.shape == (2, 3, 24, 24) and views.dtype == torch.uint8
    assert out['inputs'].shape == (3, 24, 24)
    # Same channel order as the packed image.
    packed = PackWSSSInputs()(dict(_results(), views=[_results()['img']] * 1))
    assert torch.equal(packed['data_samples'].views[0], packed['inputs'])
    with pytest.raises(ValueError, match='fixed-size crop'):
        PackWSSSInputs()(
            dict(
                _results(),
                views=[
                    np.zeros((4, 4, 3), np.uint8),
                    np.zeros((5, 4, 3), np.uint8)
                ]))
