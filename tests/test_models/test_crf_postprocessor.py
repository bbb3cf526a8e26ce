# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of mmseg_wsss.models.postprocess.CRFPostProcessor."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from PIL import Image

from mmseg_wsss.models.postprocess import CRFPostProcessor, DenseCRF

pytest.importorskip('pydensecrf.densecrf')

H, W, C = 32, 48, 3


def make_case(seed: int):
    """(H, W, 3) uint8 image of C vertical colour bands, noisy (C, H, W)
    logits leaning to the right band (their argmax is speckled)."""
    rng = np.random.default_rng(seed)
    band = (np.arange(W) * C // W).astype(np.int64)
    colours = np.array([[30, 30, 30], [200, 60, 60], [60, 60, 220]])
    image = colours[np.broadcast_to(band, (H, W))]
    image = np.clip(image + rng.integers(-4, 5, image.shape), 0, 255)
    logits = rng.normal(scale=1.0, size=(C, H, W))
    logits[band[None].repeat(H, 0),
           np.arange(H)[:, None],
           np.arange(W)[None]] += 1.0
    return image.astype(np.uint8), logits.astype(np.float32)


def make_samples(tmp_path, num: int = 3, size=None):
    """SegDataSamples as a segmentor's postprocess_result leaves them, with
    their images written as PNGs (lossless: read back exactly)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    samples, cases = [], []
    for i in range(num):
        image, logits = make_case(i)
        path = osp.join(str(tmp_path), f'img_{i}.png')
        Image.fromarray(image).save(path)
        seg_logits = torch.from_numpy(logits)
        if size is not None:
            seg_logits = seg_logits[:, :size[0], :size[1]]
        sample = SegDataSample(metainfo=dict(img_path=path))
        sample.seg_logits = PixelData(data=seg_logits)
        sample.pred_sem_seg = PixelData(data=seg_logits.argmax(0)[None])
        samples.append(sample)
        cases.append((image, logits))
    return samples, cases


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(0, keepdims=True))
    return e / e.sum(0, keepdims=True)


def test_build_none_and_disabled():
    assert CRFPostProcessor.build(None) is None
    assert CRFPostProcessor.build(dict(preset='toco')) is None
    assert CRFPostProcessor.build(dict(preset='toco', enable=False)) is None
    post = CRFPostProcessor.build(
        dict(
            enable=True,
            preset='toco_cam',
            xy_scale=96 / 448,
            prob_mode='normalize',
            workers=3,
            iters=4))
    assert isinstance(post, CRFPostProcessor)
    assert post.prob_mode == 'normalize' and post.workers == 3
    assert post.deferred is False
    assert post.crf.params == DenseCRF(
        preset='toco_cam', xy_scale=96 / 448, iters=4).params
    # workers defaults to tools/test.py's former --crf-workers default
    assert CRFPostProcessor.build(dict(enable=True,
                                       preset='toco')).workers == 2


def test_build_errors():
    with pytest.raises(ValueError) as err:
        CRFPostProcessor.build(dict(enable=True, preset='toco', num_workers=2))
    assert 'num_workers' in str(err.value)
    for key in CRFPostProcessor.CFG_KEYS:
        assert repr(key) in str(err.value)
    # checked even when off: a typo fails when the model is built
    with pytest.raises(ValueError, match='xy_scal'):
        CRFPostProcessor.build(dict(preset='toco', xy_scal=0.5))
    with pytest.raises(ValueError, match='preset'):
        CRFPostProcessor.build(dict(preset='nope'))
    with pytest.raises(ValueError, match='prob_mode'):
        CRFPostProcessor.build(
            dict(enable=True, preset='toco', prob_mode='exp'))
    with pytest.raises(ValueError, match='workers'):
        CRFPostProcessor(preset='toco', workers=-1)


def test_to_probs_modes():
    scores = torch.tensor([[[0.5, 0.5]], [[0.5, 1.5]], [[0.0, 0.0]]])
    post = CRFPostProcessor(preset='toco', prob_mode='normalize')
    probs = post.to_probs(scores)
    np.testing.assert_allclose(probs[:, 0, 0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(probs[:, 0, 1], [0.25, 0.75, 0.0])
    post = CRFPostProcessor(preset='toco', prob_mode='softmax')
    np.testing.assert_allclose(
        post.to_probs(scores), scores.softmax(0).numpy(), rtol=1e-6)


@pytest.mark.parametrize('workers', [0, 2])
def test_call_refines_pred_sem_seg(tmp_path, workers):
    samples, cases = make_samples(tmp_path)
    raw = [s.seg_logits.data.clone() for s in samples]
    post = CRFPostProcessor(preset='toco_cam', workers=workers)
    try:
        out = post(samples)
        assert out is samples
        if workers:
            assert post._pool is not None  # the pool ran the batch
    finally:
        post.close()
    crf = DenseCRF(preset='toco_cam')
    changed = 0
    for sample, (image, logits), before in zip(out, cases, raw):
        expected = crf.label(image, softmax(logits))
        pred = sample.pred_sem_seg.data
        assert pred.shape == (1, H, W) and pred.dtype == torch.int64
        np.testing.assert_array_equal(pred[0].numpy(), expected)
        assert torch.equal(sample.seg_logits.data, before)  # kept as is
        changed += int((pred[0] != before.argmax(0)).sum())
    assert changed > 0  # the CRF did something


def test_call_inline_equals_workers(tmp_path):
    preds = {}
    for workers in (0, 1, 2):
        samples, _ = make_samples(tmp_path / str(workers), num=4)
        post = CRFPostProcessor(preset='toco', xy_scale=0.25, workers=workers)
        try:
            preds[workers] = [s.pred_sem_seg.data for s in post(samples)]
        finally:
            post.close()
    for workers in (1, 2):
        for a, b in zip(preds[0], preds[workers]):
            assert torch.equal(a, b)


def test_call_needs_original_resolution(tmp_path):
    samples, _ = make_samples(tmp_path, num=1, size=(H - 2, W))
    post = CRFPostProcessor(preset='toco', workers=0)
    with pytest.raises(ValueError, match='original resolution'):
        post(samples)


@pytest.mark.parametrize('workers', [0, 2])
def test_refine_equals_dense_crf(workers):
    cases = [make_case(i) for i in range(3)]
    images = [image for image, _ in cases]
    probs = [softmax(logits) for _, logits in cases]
    post = CRFPostProcessor(preset='rrm', xy_scale=0.25, workers=workers)
    try:
        labels = post.refine(images, probs)
        again = post.refine(images, probs)  # the pool is reused
    finally:
        post.close()
    crf = DenseCRF(preset='rrm', xy_scale=0.25)
    assert len(labels) == 3
    for label, label2, image, prob in zip(labels, again, images, probs):
        assert label.shape == (H, W) and label.dtype == np.int64
        np.testing.assert_array_equal(label, crf.label(image, prob))
        np.testing.assert_array_equal(label, label2)
    with pytest.raises(ValueError, match='2 probability maps'):
        post.refine(images, probs[:2])


@pytest.mark.parametrize('workers', [0, 1, 2])
def test_async_submit_results_drain(tmp_path, workers):
    samples, cases = make_samples(tmp_path, num=5)
    post = CRFPostProcessor(preset='toco_cam', workers=workers)
    crf = DenseCRF(preset='toco_cam')
    got = {}
    try:
        for i, sample in enumerate(samples):
            post.submit(f'k{i}', sample)
            got.update(post.results())
        assert len(post) == 5 - len(got)
        got.update(post.drain())
        assert len(post) == 0
        assert list(post.drain()) == []
    finally:
        post.close()
    assert sorted(got) == [f'k{i}' for i in range(5)]
    for i, (image, logits) in enumerate(cases):
        assert got[f'k{i}'].dtype == np.int64
        np.testing.assert_array_equal(got[f'k{i}'],
                                      crf.label(image, softmax(logits)))
    # submit leaves the sample alone; assign writes the label
    before = samples[0].pred_sem_seg.data.clone()
    assert torch.equal(samples[0].pred_sem_seg.data, before)
    CRFPostProcessor.assign(samples[0], got['k0'])
    np.testing.assert_array_equal(samples[0].pred_sem_seg.data[0].numpy(),
                                  got['k0'])


def test_copy_drops_the_pool(tmp_path):
    samples, _ = make_samples(tmp_path, num=2)
    post = CRFPostProcessor(preset='toco', workers=2)
    try:
        post.start()
        assert post._pool is not None
        clone = copy.deepcopy(post)
        assert clone._pool is None and clone.crf.params == post.crf.params
        a = [s.pred_sem_seg.data.clone() for s in post(samples)]
        b = [s.pred_sem_seg.data for s in clone(samples)]
    finally:
        post.close()
        clone.close()
    assert all(torch.equal(x, y) for x, y in zip(a, b))
