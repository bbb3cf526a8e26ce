# Copyright (c) OpenMMLab. All rights reserved.
"""RandomCropWithBox: padding, the valid box, determinism."""
import numpy as np
import pytest

import mmseg_wsss  # noqa: F401
from mmseg_wsss.datasets.transforms import RandomCropWithBox
from mmseg_wsss.registry import TRANSFORMS


def _results(h, w, seed=0):
    rng = np.random.RandomState(seed)
    img = rng.randint(1, 256, (h, w, 3)).astype(np.uint8)  # never 0
    mask = rng.randint(0, 5, (h, w)).astype(np.uint8)  # never 255
    return dict(
        img=img.copy(),
        gt_seg_map=mask.copy(),
        seg_fields=['gt_seg_map'],
        img_shape=(h, w),
        ori_shape=(h, w)), img, mask


def _check_box(out, img, mask, crop):
    ch, cw = crop
    h0, h1, w0, w1 = (int(v) for v in out['img_box'])
    assert out['img_box'].dtype == np.int64 and out['img_box'].shape == (4, )
    assert out['img'].shape == (ch, cw, 3)
    assert out['gt_seg_map'].shape == (ch, cw)
    assert out['img_shape'] == (ch, cw)
    assert 0 <= h0 < h1 <= ch and 0 <= w0 < w1 <= cw
    inside = np.zeros((ch, cw), bool)
    inside[h0:h1, w0:w1] = True
    # outside the box: pad values only
    assert (out['img'][~inside] == 0).all()
    assert (out['gt_seg_map'][~inside] == 255).all()
    # inside: image pixels only (no pad), forming a window of the image
    win = out['img'][h0:h1, w0:w1]
    assert (win > 0).all() and (out['gt_seg_map'][inside] != 255).all()
    hits = [(y, x) for y in range(img.shape[0] - (h1 - h0) + 1)
            for x in range(img.shape[1] - (w1 - w0) + 1)
            if np.array_equal(img[y:y + h1 - h0, x:x + w1 - w0], win)]
    assert len(hits) == 1
    y, x = hits[0]
    np.testing.assert_array_equal(out['gt_seg_map'][h0:h1, w0:w1],
                                  mask[y:y + h1 - h0, x:x + w1 - w0])
    return h0, h1, w0, w1, y, x


@pytest.mark.parametrize('seed', range(4))
def test_small_image_is_padded(seed):
    np.random.seed(seed)
    res, img, mask = _results(10, 12, seed)
    out = RandomCropWithBox(crop_size=16)(res)
    h0, h1, w0, w1, y, x = _check_box(out, img, mask, (16, 16))
    # the whole image is inside the crop
    assert (h1 - h0, w1 - w0) == (10, 12) and (y, x) == (0, 0)
    np.testing.assert_array_equal(out['img'][h0:h1, w0:w1], img)


@pytest.mark.parametrize('seed', range(4))
def test_large_image_box_is_full_crop(seed):
    np.random.seed(seed)
    res, img, mask = _results(20, 24, seed)
    out = RandomCropWithBox(crop_size=(8, 10))(res)
    h0, h1, w0, w1, y, x = _check_box(out, img, mask, (8, 10))
    assert [h0, h1, w0, w1] == [0, 8, 0, 10]
    np.testing.assert_array_equal(out['img'], img[y:y + 8, x:x + 10])


@pytest.mark.parametrize('seed', range(4))
def test_mixed_padding_and_cropping(seed):
    np.random.seed(seed)
    res, img, mask = _results(10, 24, seed)
    out = RandomCropWithBox(crop_size=(16, 16))(res)
    h0, h1, w0, w1, y, x = _check_box(out, img, mask, (16, 16))
    assert h1 - h0 == 10 and (w0, w1) == (0, 16) and y == 0


def test_exact_size_is_identity():
    res, img, mask = _results(16, 16)
    out = RandomCropWithBox(crop_size=16)(res)
    np.testing.assert_array_equal(out['img'], img)
    np.testing.assert_array_equal(out['gt_seg_map'], mask)
    assert out['img_box'].tolist() == [0, 16, 0, 16]


def test_custom_pad_values_and_image_only():
    np.random.seed(1)
    res, img, _ = _results(4, 4)
    del res['gt_seg_map'], res['seg_fields']
    out = RandomCropWithBox(crop_size=8, pad_val=7, seg_pad_val=9)(res)
    h0, h1, w0, w1 = out['img_box'].tolist()
    inside = np.zeros((8, 8), bool)
    inside[h0:h1, w0:w1] = True
    assert (out['img'][~inside] == 7).all()
    np.testing.assert_array_equal(out['img'][h0:h1, w0:w1], img)


def test_deterministic_under_numpy_seed():
    t = RandomCropWithBox(crop_size=(12, 14))
    outs = []
    for _ in range(2):
        np.random.seed(123)
        res, _, _ = _results(9, 20)
        outs.append(t(res))
    np.testing.assert_array_equal(outs[0]['img'], outs[1]['img'])
    np.testing.assert_array_equal(outs[0]['img_box'], outs[1]['img_box'])
    np.testing.assert_array_equal(outs[0]['gt_seg_map'],
                                  outs[1]['gt_seg_map'])
    # different seeds give different placements (for some seed)
    boxes = set()
    for s in range(10):
        np.random.seed(s)
        res, _, _ = _results(9, 20)
        o = t(res)
        boxes.add((tuple(o['img_box'].tolist()), o['img'].tobytes()))
    assert len(boxes) > 1


@pytest.mark.parametrize('crop', [0, -4, (0, 8), (8, -1), (8, ), (4, 4, 4)])
def test_invalid_crop_size(crop):
    with pytest.raises(ValueError, match='crop_size'):
        RandomCropWithBox(crop_size=crop)


def test_registered_and_repr():
    t = TRANSFORMS.build(dict(type='RandomCropWithBox', crop_size=(4, 6)))
    assert isinstance(t, RandomCropWithBox)
    assert t.crop_size == (4, 6)
    assert 'crop_size=(4, 6)' in repr(t)
