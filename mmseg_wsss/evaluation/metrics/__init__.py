# Copyright (c) OpenMMLab. All rights reserved.
from .crf_iou_metric import CRFIoUMetric
from .wsss_iou_metric import WSSSIoUMetric

__all__ = ['CRFIoUMetric', 'WSSSIoUMetric']
