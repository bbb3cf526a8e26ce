# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import torch
from mmengine.structures import LabelData
from mmseg.datasets.transforms import PackSegInputs

from mmseg_wsss.registry import TRANSFORMS

DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                     'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                     'reduce_zero_label', 'img_box')


@TRANSFORMS.register_module()
class PackWSSSInputs(PackSegInputs):
    """:class:`PackSegInputs` that also packs the image-level labels.

    ``results['gt_cls_label']`` (a (C-1,) multi-hot over the foreground
    classes, set by the WSSS datasets) becomes
    ``data_sample.gt_cls_label = LabelData(data=Tensor (C-1,))``; the valid
    box of a padded crop (``img_box``, see :class:`RandomCropWithBox`) is kept
    in the metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'gt_cls_label' in results:
            label = torch.as_tensor(results['gt_cls_label'],
                                    dtype=torch.float32)
            packed['data_samples'].gt_cls_label = LabelData(data=label)
        return packed
