# Copyright (c) OpenMMLab. All rights reserved.
"""WSSSTestLoop: the CRF post-processor of the model runs in parallel
workers, and the metric and the after_test_iter hooks get the refined
predictions in the original order."""
import os
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.models.segmentors.base import BaseSegmentor
from PIL import Image

from mmseg_wsss.engine import WSSSTestLoop
from mmseg_wsss.evaluation import WSSSIoUMetric
from mmseg_wsss.models.postprocess import CRFPostProcessor, DenseCRF

pytest.importorskip('pydensecrf.densecrf')

H, W, C = 32, 40, 3
NUM_IMAGES = 5
CLASSES = ('background', 'red', 'blue')


def _case(seed: int):
    """Colour bands and noisy logits leaning to them (speckled argmax)."""
    rng = np.random.default_rng(seed)
    band = np.broadcast_to((np.arange(W) * C // W), (H, W))
    if seed % 2:
        band = band[:, ::-1]
    colours = np.array([[30, 30, 30], [200, 60, 60], [60, 60, 220]])
    image = np.clip(colours[band] + rng.integers(-4, 5, (H, W, 3)), 0, 255)
    logits = rng.normal(size=(C, H, W))
    logits[band, np.arange(H)[:, None], np.arange(W)[None]] += 1.0
    return image.astype(np.uint8), logits.astype(np.float32), band


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """NUM_IMAGES PNG images and label maps; {name: (image, logits)}."""
    root = tmp_path_factory.mktemp('crf_loop_data')
    os.makedirs(root / 'img')
    os.makedirs(root / 'ann')
    cases = {}
    for i in range(NUM_IMAGES):
        image, logits, band = _case(i)
        name = f'img_{i}'
        Image.fromarray(image).save(root / 'img' / f'{name}.png')
        Image.fromarray(band.astype(np.uint8)).save(root / 'ann' /
                                                    f'{name}.png')
        cases[name] = (image, logits)
    return str(root), cases


class StandInSegmentor(BaseSegmentor):
    """Returns fixed seg_logits per image; follows the segmentors' CRF
    protocol (``crf_postprocessor``, ``deferred``)."""

    def __init__(self, logits: dict, crf_cfg=None) -> None:
        super().__init__()
        self.align_corners = False
        self.logits = {k: torch.from_numpy(v) for k, v in logits.items()}
        self.crf_postprocessor = CRFPostProcessor.build(crf_cfg)
        self.deferred_seen = []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def predict(self, inputs, data_samples=None):
        seg_logits = torch.stack([
            self.logits[osp.splitext(osp.basename(s.img_path))[0]]
            for s in data_samples
        ])
        samples = self.postprocess_result(seg_logits, data_samples)
        post = self.crf_postprocessor
        self.deferred_seen.append(None if post is None else post.deferred)
        if post is not None and not post.deferred:
            samples = post(samples)
        return samples

    def extract_feat(self, inputs):
        return inputs

    def encode_decode(self, inputs, batch_data_samples):
        raise NotImplementedError

    def loss(self, inputs, data_samples):
        raise NotImplementedError

    def _forward(self, inputs, data_samples=None):
        raise NotImplementedError


class RecordingMetric(WSSSIoUMetric):
    """WSSSIoUMetric that records (image name, prediction) per sample."""

    def __init__(self, **kwargs) -> None:
        super().__init__(iou_metrics=['mIoU'], **kwargs)
        self.seen = []

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            name = osp.splitext(osp.basename(sample['img_path']))[0]
            pred = sample['pred_sem_seg']['data'][0].cpu().numpy()
            self.seen.append((name, pred))
        super().process(data_batch, data_samples)


class RecordingHook(Hook):
    """Records the order of the test iterations and what after_test_iter
    sees."""

    def __init__(self) -> None:
        self.before, self.after, self.seen = [], [], []

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.before.append(batch_idx)

    def after_test_iter(self,
                        runner,
                        batch_idx,
                        data_batch=None,
                        outputs=None) -> None:
        self.after.append(batch_idx)
        for sample in outputs:
            name = osp.splitext(osp.basename(sample.img_path))[0]
            self.seen.append(
                (name, sample.pred_sem_seg.data[0].cpu().numpy().copy()))


def run_test(tmp_path,
             root,
             model,
             loop='WSSSTestLoop',
             out_dir=None,
             **loop_kwargs):
    metric = RecordingMetric(output_dir=out_dir)
    hook = RecordingHook()
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    runner = Runner(
        model=model,
        work_dir=str(tmp_path / 'work'),
        experiment_name=f'wsss_test_loop_{uuid.uuid4().hex}',
        test_dataloader=dict(
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='BaseSegDataset',
                data_root=root,
                data_prefix=dict(img_path='img', seg_map_path='ann'),
                img_suffix='.png',
                seg_map_suffix='.png',
                metainfo=dict(classes=CLASSES),
                pipeline=pipeline)),
        test_evaluator=Evaluator(metric),
        test_cfg=dict(type=loop, **loop_kwargs),
        custom_hooks=[hook],
        default_scope='mmseg')
    metrics = runner.test()
    assert 'mIoU' in metrics
    if loop == 'WSSSTestLoop':
        assert isinstance(runner.test_loop, WSSSTestLoop)
    return metric.seen, hook


NAMES = [f'img_{i}' for i in range(NUM_IMAGES)]
CRF_CFG = dict(enable=True, preset='toco_cam', prob_mode='softmax')


def _expected(cases):
    crf = DenseCRF(preset='toco_cam')
    out = {}
    for name, (image, logits) in cases.items():
        probs = torch.from_numpy(logits).softmax(0).numpy()
        out[name] = crf.label(image, probs)
    return out


@pytest.mark.parametrize('workers', [0, 2])
def test_metric_and_hooks_get_refined_in_order(tmp_path, dataset, workers):
    root, cases = dataset
    model = StandInSegmentor({
        k: v[1]
        for k, v in cases.items()
    }, dict(CRF_CFG, workers=workers))
    out_dir = str(tmp_path / 'out')
    seen, hook = run_test(tmp_path, root, model, out_dir=out_dir)
    expected = _expected(cases)
    # the metric: every image once, in the dataset's order, CRF labels
    assert [name for name, _ in seen] == NAMES
    changed = 0
    for name, pred in seen:
        np.testing.assert_array_equal(pred, expected[name])
        changed += int((pred != cases[name][1].argmax(0)).sum())
    assert changed > 0
    # the hooks: after_test_iter per batch, in order, with the CRF labels
    assert hook.before == [0, 1, 2] and hook.after == [0, 1, 2]
    assert [name for name, _ in hook.seen] == NAMES
    for name, pred in hook.seen:
        np.testing.assert_array_equal(pred, expected[name])
    # the metric's output_dir (tools/test.py --out) has the CRF labels
    assert sorted(os.listdir(out_dir)) == [n + '.png' for n in NAMES]
    for name in NAMES:
        png = np.array(Image.open(osp.join(out_dir, name + '.png')))
        np.testing.assert_array_equal(png, expected[name])
    # predict ran with the CRF deferred; the flag is restored
    assert model.deferred_seen == [True] * 3
    assert model.crf_postprocessor.deferred is False
    assert model.crf_postprocessor._pool is None  # closed at the end


def test_same_as_synchronous_predict(tmp_path, dataset):
    """mmengine's TestLoop with the CRF inside predict gives the same."""
    root, cases = dataset
    logits = {k: v[1] for k, v in cases.items()}
    model = StandInSegmentor(logits, dict(CRF_CFG, workers=0))
    sync, _ = run_test(tmp_path / 'sync', root, model, loop='TestLoop')
    assert model.deferred_seen == [False] * 3
    model = StandInSegmentor(logits, dict(CRF_CFG, workers=1))
    deferred, _ = run_test(tmp_path / 'deferred', root, model)
    assert [n for n, _ in sync] == [n for n, _ in deferred] == NAMES
    for (_, a), (_, b) in zip(sync, deferred):
        np.testing.assert_array_equal(a, b)


def test_without_postprocessor_is_test_loop(tmp_path, dataset):
    root, cases = dataset
    model = StandInSegmentor({k: v[1] for k, v in cases.items()})
    assert model.crf_postprocessor is None
    seen, hook = run_test(tmp_path, root, model)
    assert [name for name, _ in seen] == NAMES
    for name, pred in seen:
        np.testing.assert_array_equal(pred, cases[name][1].argmax(0))
    assert hook.after == [0, 1, 2]
    assert model.deferred_seen == [None] * 3


class ReversingPostProcessor:
    """A fake post-processor whose tasks finish last-in first-out, only
    when waited for; its label of image i is filled with i % C."""

    def __init__(self) -> None:
        self.workers = 1
        self.deferred = False
        self.queue = []
        self.max_queued = 0
        self.closed = False

    def submit(self, key, sample) -> None:
        assert self.deferred
        name = osp.splitext(osp.basename(sample.img_path))[0]
        self.queue.append((key, int(name.split('_')[1])))
        self.max_queued = max(self.max_queued, len(self.queue))

    def results(self):
        return iter(())

    def drain(self):
        while self.queue:
            key, i = self.queue.pop()
            yield key, np.full((H, W), i % C, np.int64)

    assign = staticmethod(CRFPostProcessor.assign)

    def __call__(self, samples):
        raise AssertionError('the loop defers the CRF')

    def close(self) -> None:
        self.closed = True

    def terminate(self) -> None:
        raise AssertionError('no error expected')


@pytest.mark.parametrize('max_pending', [1, None])
def test_out_of_order_labels_bounded(tmp_path, dataset, max_pending):
    root, cases = dataset
    model = StandInSegmentor({k: v[1] for k, v in cases.items()})
    model.crf_postprocessor = fake = ReversingPostProcessor()
    kwargs = {} if max_pending is None else dict(
        max_pending_batches=max_pending)
    seen, hook = run_test(tmp_path, root, model, **kwargs)
    assert [name for name, _ in seen] == NAMES
    assert hook.after == [0, 1, 2]
    for name, pred in seen + hook.seen:
        assert (pred == int(name.split('_')[1]) % C).all()
    # at most max_pending + 1 batches of 2 images wait (default bound: 2)
    assert fake.max_queued <= 2 * ((max_pending or 2) + 1)
    assert fake.closed and fake.deferred is False
