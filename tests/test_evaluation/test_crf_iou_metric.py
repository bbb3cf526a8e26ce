# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric

from mmseg_wsss.evaluation import CRFIoUMetric

H, W = 40, 64


def _sample(tmp_path, idx):
    """Dark left half, bright right half; a blurred, shifted 2-class map."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, W // 2:] = 220
    path = osp.join(str(tmp_path), f'img_{idx}.jpg')
    cv2.imwrite(path, img)
    gt = np.zeros((H, W), np.int64)
    gt[:, W // 2:] = 1
    x = np.arange(W, dtype=np.float32)
    # Boundary predicted 6 px too far left, ramped over 20 px.
    p1 = np.clip((x - (W // 2 - 6) + 10) / 20, 0.02, 0.98)
    scores = np.stack([1 - p1, p1])[:, None, :].repeat(H, axis=1)
    scores = torch.from_numpy(np.log(scores))  # logits
    pred = scores.argmax(0)[None]
    return dict(
        img_path=path,
        seg_logits=dict(data=scores),
        pred_sem_seg=dict(data=pred),
        gt_sem_seg=dict(data=torch.from_numpy(gt)[None]))


@pytest.mark.parametrize('num_workers', [0, 2])
def test_crf_metric_sharpens_and_writes(tmp_path, num_workers):
    samples = [_sample(tmp_path, i) for i in range(3)]
    meta = dict(classes=('background', 'thing'))
    plain = IoUMetric(iou_metrics=['mIoU'])
    plain.dataset_meta = meta
    plain.process({}, samples)
    out_dir = str(tmp_path / f'out{num_workers}')
    crf = CRFIoUMetric(
        crf=dict(preset='toco_cam'),
        num_workers=num_workers,
        iou_metrics=['mIoU'],
        output_dir=out_dir)
    crf.dataset_meta = meta
    crf.process({}, samples)
    before = plain.evaluate(len(samples))['mIoU']
    after = crf.evaluate(len(samples))['mIoU']
    assert after > before + 5, (before, after)
    assert sorted(os.listdir(out_dir)) == [f'img_{i}.png' for i in range(3)]


def test_crf_metric_normalize_mode():
    m = CRFIoUMetric(prob_mode='normalize', num_workers=0)
    scores = torch.tensor([[[0.5, 0.5]], [[0.5, 1.5]], [[0.0, 0.0]]])
    probs = m.to_probs(scores)
    np.testing.assert_allclose(probs[:, 0, 0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(probs[:, 0, 1], [0.25, 0.75, 0.0])
    with pytest.raises(ValueError, match='prob_mode'):
        CRFIoUMetric(prob_mode='exp')
