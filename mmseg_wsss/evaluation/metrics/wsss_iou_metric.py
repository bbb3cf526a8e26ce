# Copyright (c) OpenMMLab. All rights reserved.
from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np
import torch
from mmengine.logging import print_log
from mmseg.evaluation import IoUMetric
from prettytable import PrettyTable

from mmseg_wsss.registry import METRICS


def _describe_mask(data_sample: dict) -> str:
    """The mask's file (or its image's) for an error message."""
    if data_sample.get('seg_map_path'):
        return f'ground-truth mask {data_sample["seg_map_path"]}'
    if data_sample.get('img_path'):
        return f'ground-truth mask of image {data_sample["img_path"]}'
    return 'a ground-truth mask (the data sample has no seg_map_path)'


def check_gt_sem_seg(data_sample: dict, pred: torch.Tensor, num_classes: int,
                     ignore_index: int) -> None:
    """Refuse a ground-truth mask that mmseg's IoU would score wrongly.

    mmseg's :meth:`IoUMetric.intersect_and_union` bins only 0..C-1, so other
    values (neither a class nor the ignore index) are dropped silently and
    change aAcc; a mask of another size than its prediction, or a colour
    (multi-channel) mask, fails with an ``IndexError`` naming no file. Each
    is an error here, naming the file and what is wrong. It costs a few
    element-wise comparisons per image.

    Args:
        data_sample (dict): One data sample as the evaluator passes it, with
            ``gt_sem_seg.data`` (Tensor (1, H, W); an RGB mask read by
            ``LoadAnnotations`` arrives as (H, W, 3)) and the metainfo
            ``seg_map_path`` / ``img_path`` / ``ori_shape`` if present.
        pred (Tensor): The prediction, (1, H, W) or (H, W), at the image's
            original size.
        num_classes (int): C, background included.
        ignore_index (int): The label value that is not scored.

    Raises:
        ValueError: The mask is not single-channel, its size differs from
            the prediction's, or it holds values outside 0..C-1 that are not
            ``ignore_index``.
    """
    gt = data_sample['gt_sem_seg']['data']
    what = _describe_mask(data_sample)
    shape = tuple(gt.shape)
    if gt.ndim not in (2, 3) or (gt.ndim == 3 and shape[0] != 1):
        raise ValueError(
            f'{what} is not a single-channel image of class ids: its data '
            f'has shape {shape} (a colour/RGB mask gives H x W x 3). Masks '
            'must be palette ("P" mode) or 8-bit grayscale PNGs whose pixel '
            'values are class ids, as VOC SegmentationClass; convert the '
            'colours to class ids.')
    mask_hw, pred_hw = shape[-2:], tuple(pred.shape[-2:])
    if mask_hw != pred_hw:
        image = data_sample.get('img_path', 'its image')
        ori = data_sample.get('ori_shape')
        ori = f', image size {tuple(ori)[:2]}' if ori is not None else ''
        raise ValueError(
            f'{what} is {mask_hw[0]}x{mask_hw[1]} (H x W), but the '
            f'prediction for {image} is {pred_hw[0]}x{pred_hw[1]}{ori}: a '
            'mask must have the size of its image.')
    invalid = (gt != ignore_index) & ((gt < 0) | (gt >= num_classes))
    if invalid.any():
        values = torch.unique(gt[invalid]).tolist()
        shown = values[:10] + (['...'] if len(values) > 10 else [])
        raise ValueError(
            f'{what} has pixel values {shown} ({int(invalid.sum())} pixels) '
            f'that are neither a class id 0..{num_classes - 1} (the dataset '
            f'has {num_classes} classes) nor the ignore index '
            f'{ignore_index}; they would be dropped from the scores '
            'silently. Fix the mask, or the class list (classes.txt / '
            'metainfo) if the dataset has more classes.')


@METRICS.register_module()
class WSSSIoUMetric(IoUMetric):
    """:class:`IoUMetric` plus the per-class over-activation rate.

    The over-activation (OA) rate of class c is ``FP_c / (TP_c + FP_c)``: the
    share of the pixels predicted as c that are not c (DuPL, Figure 7). It
    is logged per class beside IoU, and ``mOA`` (mean over the classes that
    were predicted at least once, background included) is returned with
    mmseg's metrics. Use it for segmentation predictions or for CAM pseudo
    labels alike.

    Every ground-truth mask is checked first (:func:`check_gt_sem_seg`): a
    value outside the classes that is not the ignore index, a size other
    than the image's or a colour mask is an error naming the file, not a
    silently wrong score.
    """

    def check_gt(self,
                 data_sample: dict,
                 pred_key: str = 'pred_sem_seg') -> None:
        """:func:`check_gt_sem_seg` against this metric's classes."""
        check_gt_sem_seg(data_sample, data_sample[pred_key]['data'],
                         len(self.dataset_meta['classes']), self.ignore_index)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Check each ground-truth mask, then :meth:`IoUMetric.process`."""
        if not self.format_only:
            for data_sample in data_samples:
                self.check_gt(data_sample)
        super().process(data_batch, data_samples)

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
