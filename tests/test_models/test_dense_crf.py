# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of mmseg_wsss.models.postprocess.dense_crf (DenseCRF, CRFPool)."""
import builtins
import sys

import numpy as np
import pytest

from mmseg_wsss.models.postprocess.dense_crf import (CRF_PRESETS, CRFPool,
                                                     DenseCRF)

pytest.importorskip('pydensecrf.densecrf')

H, W = 48, 64
EDGE = W // 2


def _edge_sample(shift: int = 6):
    """Dark left / bright right image with a vertical edge at EDGE, and a
    two-class map blurred by a 20 px ramp whose 0.5 point is ``shift`` px
    right of the edge (so the raw argmax boundary is off by ``shift``)."""
    rng = np.random.default_rng(0)
    image = np.full((H, W, 3), 40, np.int64)
    image[:, EDGE:] = 200
    image += rng.integers(-3, 4, image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    x = np.arange(W)
    fg = np.clip((x - (EDGE + shift) + 10) / 20, 0, 1) * 0.9 + 0.05
    probs = np.stack([1 - fg, fg])[:, None, :].repeat(H, axis=1)
    gt = np.broadcast_to(x >= EDGE, (H, W))
    return image, probs.astype(np.float32), gt


def _random_sample(seed: int, num_classes: int = 3):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    logits = rng.normal(size=(num_classes, H, W)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(0, keepdims=True)
    return image, probs


class _FakeCRF2D:
    """Records what DenseCRF passes to pydensecrf.densecrf.DenseCRF2D."""
    calls = []

    def __init__(self, width, height, num_classes):
        self.record = dict(shape=(width, height, num_classes))
        _FakeCRF2D.calls.append(self.record)
        self.num_classes, self.size = num_classes, width * height

    def setUnaryEnergy(self, unary):
        self.record['unary'] = unary

    def addPairwiseGaussian(self, sxy, compat, **kwargs):
        self.record['gaussian'] = dict(sxy=sxy, compat=compat, **kwargs)

    def addPairwiseBilateral(self, sxy, srgb, rgbim, compat, **kwargs):
        self.record['bilateral'] = dict(
            sxy=sxy, srgb=srgb, rgbim=rgbim, compat=compat, **kwargs)

    def inference(self, iters):
        self.record['iters'] = iters
        return np.full((self.num_classes, self.size), 1. / self.num_classes,
                       np.float32)


@pytest.fixture
def fake_crf(monkeypatch):
    import pydensecrf.densecrf
    _FakeCRF2D.calls = []
    monkeypatch.setattr(pydensecrf.densecrf, 'DenseCRF2D', _FakeCRF2D)
    return _FakeCRF2D.calls


def _passed(calls):
    rec = calls[-1]
    return dict(
        iters=rec['iters'],
        pos_xy_std=rec['gaussian']['sxy'],
        pos_w=rec['gaussian']['compat'],
        bi_xy_std=rec['bilateral']['sxy'],
        bi_rgb_std=rec['bilateral']['srgb'],
        bi_w=rec['bilateral']['compat'])


@pytest.mark.parametrize('preset,expected', [
    ('toco', (10, 1, 1, 121, 5, 4)),
    ('toco_cam', (10, 3, 3, 36, 3, 4)),
    ('1stage', (10, 3, 3, 80, 13, 10)),
    ('rrm', (10, 3, 3, 83, 5, 4)),
])
def test_presets_reach_pydensecrf(fake_crf, preset, expected):
    keys = ('iters', 'pos_xy_std', 'pos_w', 'bi_xy_std', 'bi_rgb_std', 'bi_w')
    assert CRF_PRESETS[preset] == dict(zip(keys, expected))
    image, probs = _random_sample(0)
    crf = DenseCRF(preset=preset)
    assert crf.params == dict(zip(keys, expected))
    out = crf(image, probs)
    assert _passed(fake_crf) == dict(zip(keys, expected))
    rec = fake_crf[-1]
    assert rec['shape'] == (W, H, 3)  # DenseCRF2D(width, height, classes)
    np.testing.assert_array_equal(rec['bilateral']['rgbim'], image)
    assert rec['bilateral']['rgbim'].flags['C_CONTIGUOUS']
    # unary = -log(probs), flattened per class
    assert rec['unary'].shape == (3, H * W)
    assert rec['unary'].dtype == np.float32
    np.testing.assert_allclose(
        rec['unary'], -np.log(probs.reshape(3, -1)), rtol=1e-5, atol=1e-5)
    assert out.shape == (3, H, W) and out.dtype == np.float32


def test_overrides_and_xy_scale(fake_crf):
    image, probs = _random_sample(0)
    DenseCRF(preset='toco', iters=5, bi_w=7, bi_rgb_std=9)(image, probs)
    assert _passed(fake_crf) == dict(
        iters=5, pos_xy_std=1, pos_w=1, bi_xy_std=121, bi_rgb_std=9, bi_w=7)
    # no preset: every value explicit
    DenseCRF(
        iters=2, pos_xy_std=2, pos_w=3, bi_xy_std=50, bi_rgb_std=4,
        bi_w=6)(image, probs)
    assert _passed(fake_crf) == dict(
        iters=2, pos_xy_std=2, pos_w=3, bi_xy_std=50, bi_rgb_std=4, bi_w=6)
    # xy stds scaled by round(std * scale), floored at 1; nothing else
    DenseCRF(preset='toco', xy_scale=96 / 448)(image, probs)
    assert _passed(fake_crf) == dict(
        iters=10, pos_xy_std=1, pos_w=1, bi_xy_std=26, bi_rgb_std=5, bi_w=4)
    DenseCRF(preset='rrm', xy_scale=96 / 448)(image, probs)
    assert _passed(fake_crf) == dict(
        iters=10, pos_xy_std=1, pos_w=3, bi_xy_std=18, bi_rgb_std=5, bi_w=4)
    # explicit values are scaled too
    crf = DenseCRF(preset='toco', bi_xy_std=448, xy_scale=96 / 448)
    assert crf.params['bi_xy_std'] == 96


def test_build_and_bad_params():
    from mmseg.registry import TASK_UTILS
    crf = TASK_UTILS.build(dict(type='DenseCRF', preset='1stage', iters=3))
    assert isinstance(crf, DenseCRF)
    assert crf.params['iters'] == 3 and crf.params['bi_w'] == 10
    with pytest.raises(ValueError, match='toco_cam'):
        DenseCRF(preset='nope')
    with pytest.raises(ValueError, match='not set'):
        DenseCRF(iters=10, pos_xy_std=1)
    with pytest.raises(ValueError, match='xy_scale'):
        DenseCRF(preset='toco', xy_scale=0)


def test_output_is_distribution():
    image, probs = _random_sample(1, num_classes=4)
    probs[0, :5, :5] = 0  # zeros must not produce -inf unaries
    probs /= probs.sum(0, keepdims=True)
    out = DenseCRF(preset='toco')(image, probs)
    assert out.shape == probs.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out.sum(0), 1, atol=1e-4)
    # float64 input and the label helper
    label = DenseCRF(preset='toco').label(image, probs.astype(np.float64))
    assert label.shape == (H, W) and label.dtype == np.uint8
    np.testing.assert_array_equal(label, out.argmax(0))


@pytest.mark.parametrize('preset', sorted(CRF_PRESETS))
def test_crf_sharpens_along_edge(preset):
    image, probs, gt = _edge_sample(shift=6)
    band = np.abs(np.arange(W) - EDGE) <= 10  # columns near the edge
    out = DenseCRF(preset=preset)(image, probs)
    acc_before = (probs.argmax(0) == gt)[:, band].mean()
    acc_after = (out.argmax(0) == gt)[:, band].mean()
    assert acc_after > acc_before
    assert acc_after > 0.95
    assert out.max(0)[:, band].mean() > probs.max(0)[:, band].mean() + 0.1


@pytest.mark.parametrize('how', ['sys_modules', 'import_hook'])
def test_missing_pydensecrf(monkeypatch, how):
    if how == 'sys_modules':
        for name in ('pydensecrf', 'pydensecrf.densecrf', 'pydensecrf.utils'):
            monkeypatch.setitem(sys.modules, name, None)
    else:
        real_import = builtins.__import__

        def fake_import(name, *args, **kwargs):
            if name.split('.')[0] == 'pydensecrf':
                raise ModuleNotFoundError(f'No module named {name!r}')
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, '__import__', fake_import)
    image, probs = _random_sample(0)
    crf = DenseCRF(preset='toco')  # building needs no pydensecrf
    with pytest.raises(ImportError, match=r'mmseg_wsss\[crf\]'):
        crf(image, probs)
    with pytest.raises(ImportError, match='pydensecrf2'):
        CRFPool(crf, num_workers=1)


def test_bad_shapes():
    crf = DenseCRF(preset='toco')
    image, probs = _random_sample(0)
    with pytest.raises(ValueError, match='same H and W'):
        crf(image, probs[:, :-1])
    with pytest.raises(ValueError, match='uint8'):
        crf(image.astype(np.float32), probs)
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        crf(image[..., :2], probs)
    with pytest.raises(ValueError, match=r'\(C, H, W\)'):
        crf(image, probs[0])
    with pytest.raises(ValueError, match='floating'):
        crf(image, (probs > 0.5).astype(np.int64))
    with CRFPool(crf, num_workers=0) as pool:
        with pytest.raises(ValueError):
            pool.submit('a', image, probs[:, :, :-1])


@pytest.mark.parametrize('num_workers', [0, 2])
def test_pool_matches_inline(num_workers):
    crf = DenseCRF(preset='toco')
    samples = [_random_sample(seed) for seed in range(5)]
    expected = [crf(image, probs) for image, probs in samples]
    with CRFPool(crf, num_workers=num_workers) as pool:
        # map: order of the inputs, from a lazy generator too
        outs = pool.map(iter(samples))
        assert len(outs) == len(samples)
        for out, exp in zip(outs, expected):
            np.testing.assert_allclose(out, exp, rtol=0, atol=1e-6)
        # submit / results / drain: every key once, with its own output
        got = {}
        for i, (image, probs) in enumerate(samples):
            pool.submit(f'img{i}', image, probs)
            got.update(pool.results())
            # submit blocks on the oldest task beyond the bound
            assert len(pool._pending) <= pool.max_in_flight
        got.update(pool.drain())
        assert len(pool) == 0
        assert sorted(got) == [f'img{i}' for i in range(len(samples))]
        for i, exp in enumerate(expected):
            np.testing.assert_allclose(got[f'img{i}'], exp, atol=1e-6)
    with CRFPool(
            crf, num_workers=num_workers, return_label=True,
            max_in_flight=1) as pool:
        labels = pool.map(samples, progress=True)
    for label, exp in zip(labels, expected):
        assert label.shape == (H, W) and label.dtype == np.uint8
        np.testing.assert_array_equal(label, exp.argmax(0))


def test_pool_closed_and_map_needs_empty_pool():
    crf = DenseCRF(preset='toco')
    image, probs = _random_sample(0)
    pool = CRFPool(crf, num_workers=1)
    pool.submit('a', image, probs)
    with pytest.raises(RuntimeError, match='drain'):
        pool.map([(image, probs)])
    assert [key for key, _ in pool.drain()] == ['a']
    pool.close()
    with pytest.raises(RuntimeError, match='closed'):
        pool.submit('b', image, probs)
