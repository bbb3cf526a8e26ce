# Copyright (c) OpenMMLab. All rights reserved.
from collections import OrderedDict
from typing import Dict

import numpy as np
import torch
from mmengine.logging import print_log
from mmseg.evaluation import IoUMetric
from prettytable import PrettyTable

from mmseg_wsss.registry import METRICS


@METRICS.register_module()
class WSSSIoUMetric(IoUMetric):
    """:class:`IoUMetric` plus the per-class over-activation rate.

    The over-activation (OA) rate of class c is ``FP_c / (TP_c + FP_c)``: the
    share of the pixels predicted as c that are not c (DuPL, Figure 7). It
    is logged per class beside IoU, and ``mOA`` (mean over the classes that
    were predicted at least once, background included) is returned with
    mmseg's metrics. Use it for segmentation predictions or for CAM pseudo
    labels alike.
    """

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        # results: per image (intersect, union, pred_area, label_area)
        intersect = sum(r[0] for r in results)
        pred_area = sum(r[2] for r in results)
        if isinstance(intersect, torch.Tensor):
            intersect, pred_area = intersect.numpy(), pred_area.numpy()
        with np.errstate(divide='ignore', invalid='ignore'):
            oa = (pred_area - intersect) / pred_area
        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        table.add_column('OA', [
            'n/a' if np.isnan(v) else round(float(v) * 100, 2) for v in oa
        ])
        print_log('per class over-activation rate FP/(TP+FP), %:',
                  logger='current')
        print_log('\n' + table.get_string(), logger='current')
        metrics = OrderedDict(metrics)
        metrics['mOA'] = round(float(np.nanmean(oa)) * 100, 2)
        return metrics
