# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import numpy as np
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
    in the metainfo. Extra views of the image (``results['views']``, a list
    of H x W x 3 arrays appended by :class:`AddView`) become
    ``data_sample.views``, a uint8 Tensor (V, 3, H, W) in the image's
    channel order (the model normalises them as the data preprocessor does
    the image).
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'gt_cls_label' in results:
            label = torch.as_tensor(
                results['gt_cls_label'], dtype=torch.float32)
            packed['data_samples'].gt_cls_label = LabelData(data=label)
        if results.get('views'):
            packed['data_samples'].views = self.pack_views(results['views'])
        return packed

    @staticmethod
    def pack_views(views: Sequence[np.ndarray]) -> torch.Tensor:
        """(V, 3, H, W) uint8 tensor of equally sized H x W x 3 views."""
        shapes = [tuple(v.shape) for v in views]
        if len(set(shapes)) != 1:
            raise ValueError(f'the extra views have different shapes '
                             f'{shapes}: every view needs a fixed-size crop '
                             '(e.g. RandomResizedCrop or RandomCropWithBox)')
        stacked = np.stack([np.ascontiguousarray(v) for v in views])
        return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
