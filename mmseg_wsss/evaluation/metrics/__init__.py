# Copyright (c) OpenMMLab. All rights reserved.
from .multi_branch_iou_metric import MultiBranchIoUMetric
from .wsss_iou_metric import WSSSIoUMetric

__all__ = ['MultiBranchIoUMetric', 'WSSSIoUMetric']
