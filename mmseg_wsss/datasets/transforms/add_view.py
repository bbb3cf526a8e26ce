# Copyright (c) OpenMMLab. All rights reserved.
import copy
from typing import List, Optional

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mmseg_wsss.registry import TRANSFORMS


@TRANSFORMS.register_module()
class AddView(BaseTransform):
    """Append an extra view of the current image to ``results[key]``.

    The sub-pipeline ``transforms`` runs on a deep copy of ``results``
    (without ``results[key]``); only the image it returns comes back,
    appended to the list ``results[key]`` (:class:`PackWSSSInputs` packs it
    as ``data_sample.views``). Placed before the geometric transforms it
    makes an independent view of the un-rescaled image (ToCo's second global
    view, FSR's second view); placed after the crop with only flip and
    photometric transforms it makes a pixel-aligned copy (ToCo's source of
    local crops).

    Example::

        dict(type='AddView', transforms=[
            dict(type='RandomResizedCrop', size=448, scale=(0.4, 1.0)),
            dict(type='RandomFlip', prob=0.5),
            dict(type='ToCoPhotometricAug', blur_prob=0.1,
                 solarize_prob=0.2)])

    Args:
        transforms (list[dict]): Transform configs of the view.
        key (str): List the view is appended to. Defaults to 'views'.
    """

    def __init__(self, transforms: List[dict], key: str = 'views') -> None:
        self.pipeline = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in transforms
        ])
        self.key = key

    def transform(self, results: dict) -> Optional[dict]:
        # A deep copy: transforms may edit lists or arrays in place (e.g.
        # ``img_box``), and nothing but the view may leak back.
        view = copy.deepcopy({
            k: v
            for k, v in results.items() if k != self.key
        })
        out = self.pipeline(view)
        if out is None:
            raise ValueError(f'the view pipeline {self.pipeline} dropped the '
                             'sample')
        img = out['img']
        if not isinstance(img, np.ndarray) or img.ndim != 3 or \
                img.shape[2] != 3:
            raise ValueError('a view must be an H x W x 3 image, got '
                             f'{getattr(img, "shape", type(img))}')
        results.setdefault(self.key, []).append(img)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.pipeline}, '
                f'key={self.key!r})')
