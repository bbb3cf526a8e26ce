# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from mmseg_wsss.evaluation import WSSSIoUMetric


def _sample(pred, gt):
    return dict(
        pred_sem_seg=dict(data=torch.tensor(pred)[None]),
        gt_sem_seg=dict(data=torch.tensor(gt)[None]))


def test_over_activation_rate_on_crafted_maps():
    metric = WSSSIoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=('background', 'a', 'b'))
    # class 0: predicted 1 px, correct 1 -> OA 0
    # class 1: predicted 3 px, correct 2 -> OA 1/3; IoU 2/3
    # class 2: never predicted -> excluded from mOA; IoU 0
    metric.process({}, [_sample([[0, 1, 1, 1]], [[0, 0, 1, 1]])])
    metric.process({}, [_sample([[2, 2]], [[2, 255]])])
    # second image: class 2 predicted 2 px, 1 correct, 1 on ignore (not
    # counted): OA 0
    res = metric.evaluate(2)
    assert res['mOA'] == pytest.approx((0 + 100 / 3 + 0) / 3, abs=0.01)
    # mIoU: bg 1/2, a 2/3, b 1/1
    assert res['mIoU'] == pytest.approx((50 + 66.67 + 100) / 3, abs=0.01)


def test_unpredicted_class_is_excluded():
    metric = WSSSIoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=('background', 'a', 'b'))
    metric.process({}, [_sample([[0, 0, 1, 1]], [[0, 2, 1, 1]])])
    res = metric.evaluate(1)
    # bg: pred 2, TP 1 -> 50; a: pred 2, TP 2 -> 0; b never predicted
    assert res['mOA'] == pytest.approx(25.0)
