# Copyright (c) OpenMMLab. All rights reserved.
from .crf_iou_metric import CRFIoUMetric

__all__ = ['CRFIoUMetric']
