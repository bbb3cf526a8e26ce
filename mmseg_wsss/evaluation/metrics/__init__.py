# Copyright (c) OpenMMLab. All rights reserved.
from .crf_iou_metric import CRFIoUMetric
from .multi_branch_iou_metric import MultiBranchIoUMetric
from .wsss_iou_metric import WSSSIoUMetric

__all__ = ['CRFIoUMetric', 'MultiBranchIoUMetric', 'WSSSIoUMetric']
