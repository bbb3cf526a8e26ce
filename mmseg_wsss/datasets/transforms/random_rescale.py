# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Tuple

import mmcv
import numpy as np
from mmcv.image.geometric import cv2_interp_codes, pillow_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmseg_wsss.registry import TRANSFORMS

_BACKENDS = {'cv2': cv2_interp_codes, 'pillow': pillow_interp_codes}


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Rescale by a random ratio of the image's own size.

    As the ToCo/DuPL code (``datasets/transforms.py`` ``random_scaling``): a
    ratio ``r ~ U(ratio_range)`` is drawn per image and the image becomes
    ``(int(h * r), int(w * r))`` (floored, same ratio on both axes, PIL
    bilinear by default). mmcv's ``RandomResize(scale, ratio_range,
    keep_ratio=True)`` instead rescales relative to a fixed ``scale``, so
    its effective range depends on the image size (0.4-1.6 of a 640-px COCO
    image for ``scale=(512, 512)``).

    Required keys: ``img`` (uint8 with the ``'pillow'`` backend); optional
    ``gt_seg_map``.
    Modified keys: ``img``, ``img_shape``, ``gt_seg_map``.
    Added keys: ``scale`` ((w, h) of the output), ``scale_factor``
    ((w_scale, h_scale), the actual ``new / old`` sizes, as mmcv's
    ``Resize``, which overwrites it too), ``keep_ratio`` (True).

    Args:
        ratio_range (tuple[float, float]): (min, max) of the uniform ratio,
            ``0 < min <= max``. Defaults to (0.5, 2.0).
        interpolation (str): Image interpolation of ``mmcv.imresize``; the
            seg map always uses ``'nearest'``. Defaults to 'bilinear'.
        backend (str): ``'pillow'`` (as the code) or ``'cv2'``. Defaults to
            'pillow'.
    """

    def __init__(self,
                 ratio_range: Sequence[float] = (0.5, 2.0),
                 interpolation: str = 'bilinear',
                 backend: str = 'pillow') -> None:
        try:
            lo, hi = (float(v) for v in ratio_range)
        except (TypeError, ValueError):
            raise ValueError(f'ratio_range must be (min, max), got '
                             f'{ratio_range!r}') from None
        if not 0 < lo <= hi or not np.isfinite(hi):
            raise ValueError(f'ratio_range must satisfy 0 < min <= max, got '
                             f'{ratio_range!r}')
        if backend not in _BACKENDS:
            raise ValueError(f'backend must be one of {tuple(_BACKENDS)}, '
                             f'got {backend!r}')
        if interpolation not in _BACKENDS[backend]:
            raise ValueError(f'interpolation {interpolation!r} is not '
                             f'supported by the {backend} backend')
        self.ratio_range = (lo, hi)
        self.interpolation = interpolation
        self.backend = backend

    @cache_randomness
    def _random_ratio(self) -> float:
        return float(np.random.uniform(*self.ratio_range))

    @staticmethod
    def _new_size(h: int, w: int, ratio: float) -> Tuple[int, int]:
        # int() floors as the code; at least one pixel.
        return max(int(h * ratio), 1), max(int(w * ratio), 1)

    def transform(self, results: dict) -> dict:
        """Rescale ``img`` (and ``gt_seg_map``) by a random ratio.

        Args:
            results (dict): Result dict of the pipeline.

        Returns:
            dict: The rescaled results.
        """
        h, w = results['img'].shape[:2]
        new_h, new_w = self._new_size(h, w, self._random_ratio())
        img = mmcv.imresize(
            results['img'], (new_w, new_h),
            interpolation=self.interpolation,
            backend=self.backend)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['scale'] = (new_w, new_h)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = True
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = mmcv.imresize(
                results['gt_seg_map'], (new_w, new_h),
                interpolation='nearest',
                backend=self.backend)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ratio_range={self.ratio_range}, '
                f'interpolation={self.interpolation!r}, '
                f'backend={self.backend!r})')
