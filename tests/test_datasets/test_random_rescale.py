# Copyright (c) OpenMMLab. All rights reserved.
"""RandomRescale: a ratio of the image's own size, as the ToCo/DuPL code."""
import os.path as osp
from unittest import mock

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

import mmseg_wsss  # noqa: F401
from mmseg_wsss.datasets.transforms import RandomRescale
from mmseg_wsss.registry import TRANSFORMS

from conftest import REPO_ROOT


def _results(h, w, seed=0):
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
    mask = rng.randint(0, 5, (h, w)).astype(np.uint8)
    mask[:h // 2, :w // 3] = 255
    return dict(
        img=img,
        gt_seg_map=mask,
        seg_fields=['gt_seg_map'],
        img_shape=(h, w),
        ori_shape=(h, w))


@pytest.mark.parametrize('ratio', [0.5, 0.73, 1.0, 1.37, 2.0])
def test_size_is_int_of_own_size(ratio):
    h, w = 333, 500
    res = _results(h, w)
    img, mask = res['img'].copy(), res['gt_seg_map'].copy()
    with mock.patch('numpy.random.uniform', return_value=ratio) as draw:
        out = RandomRescale()(res)
    draw.assert_called_once_with(0.5, 2.0)
    nh, nw = int(h * ratio), int(w * ratio)
    assert out['img'].shape == (nh, nw, 3) and out['img'].dtype == np.uint8
    assert out['img_shape'] == (nh, nw)
    assert out['scale'] == (nw, nh)
    assert out['scale_factor'] == (nw / w, nh / h)
    assert out['keep_ratio'] is True
    assert out['gt_seg_map'].shape == (nh, nw)
    # PIL bilinear on the image, as the code; nearest on the labels
    ref = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    np.testing.assert_array_equal(out['img'], ref)
    ref = np.asarray(Image.fromarray(mask).resize((nw, nh), Image.NEAREST))
    np.testing.assert_array_equal(out['gt_seg_map'], ref)
    assert set(np.unique(out['gt_seg_map'])) <= set(np.unique(mask))


def test_seeded_draw_is_numpy_uniform():
    h, w = 375, 500
    np.random.seed(3)
    ratio = np.random.uniform(0.5, 2.0)
    np.random.seed(3)
    out = RandomRescale()(_results(h, w))
    assert out['img_shape'] == (int(h * ratio), int(w * ratio))


@pytest.mark.parametrize('h, w', [(375, 500), (500, 333), (480, 640)])
def test_aspect_ratio_kept(h, w):
    draws = []

    def uniform(lo, hi):
        draws.append(_uniform(lo, hi))
        return draws[-1]

    _uniform = np.random.RandomState(0).uniform
    t = RandomRescale()
    with mock.patch('numpy.random.uniform', side_effect=uniform):
        for _ in range(20):
            nh, nw = t(_results(h, w))['img_shape']
            # the one drawn ratio on both axes, floored
            assert (nh, nw) == (int(h * draws[-1]), int(w * draws[-1]))
            assert abs(nh / h - nw / w) < 1 / min(h, w)
            assert (nh > h) == (nw > w)
    assert len(draws) == 20


def test_ratio_range_respected():
    h, w = 400, 600
    lo, hi = 0.7, 1.3
    np.random.seed(1)
    t = RandomRescale(ratio_range=(lo, hi))
    sizes = np.array([t(_results(h, w))['img_shape'] for _ in range(200)])
    assert (sizes[:, 0] >= int(h * lo)).all()
    assert (sizes[:, 0] <= int(h * hi)).all()
    assert (sizes[:, 1] >= int(w * lo)).all()
    assert (sizes[:, 1] <= int(w * hi)).all()
    # the draws cover the range (not a fixed scale)
    r = sizes[:, 1] / w
    assert r.min() < lo + 0.05 and r.max() > hi - 0.05
    # a fixed ratio is allowed
    out = RandomRescale(ratio_range=(1.5, 1.5))(_results(h, w))
    assert out['img_shape'] == (600, 900)


def test_without_seg_map_and_cv2_backend():
    res = _results(40, 60)
    del res['gt_seg_map']
    with mock.patch('numpy.random.uniform', return_value=0.5):
        out = RandomRescale(interpolation='nearest', backend='cv2')(res)
    assert out['img'].shape == (20, 30, 3) and 'gt_seg_map' not in out


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(ratio_range=(2.0, 0.5)),  # min > max
        dict(ratio_range=(0, 2.0)),
        dict(ratio_range=(-0.5, 2.0)),
        dict(ratio_range=(0.5, float('inf'))),
        dict(ratio_range=(float('nan'), 2.0)),
        dict(ratio_range=(0.5, )),
        dict(ratio_range=(0.5, 1.0, 2.0)),
        dict(ratio_range=1.0),
        dict(ratio_range=('a', 'b')),
        dict(backend='turbojpeg'),
        dict(interpolation='area', backend='pillow'),
    ])
def test_bad_args_raise(kwargs):
    with pytest.raises(ValueError):
        RandomRescale(**kwargs)


def test_registered_and_in_dataset_configs():
    t = TRANSFORMS.build(dict(type='RandomRescale'))
    assert isinstance(t, RandomRescale)
    assert t.ratio_range == (0.5, 2.0)
    assert (t.interpolation, t.backend) == ('bilinear', 'pillow')
    assert 'RandomRescale' in repr(t)
    for name in ('voc12aug_448x448', 'coco14_448x448'):
        cfg = Config.fromfile(
            osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', f'{name}.py'))
        types = [s['type'] for s in cfg.train_pipeline]
        assert 'RandomRescale' in types and 'RandomResize' not in types
        step = cfg.train_pipeline[types.index('RandomRescale')]
        assert tuple(step['ratio_range']) == (0.5, 2.0)
        assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
