# Copyright (c) OpenMMLab. All rights reserved.
import math
import random
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image

from mmseg_wsss.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """torchvision's ``RandomResizedCrop`` on an mmcv results dict.

    A box of area fraction ``U(scale)`` of the image and aspect ratio
    log-uniform in ``ratio`` is drawn (10 tries; then the central crop of
    the largest box within ``ratio``, as torchvision), cut out and resized
    to ``size`` with PIL's filter (``interpolation``; ToCo and FSR:
    bicubic). The segmentation maps (``seg_fields``), of any dtype, are cut
    and resized with PIL's ``nearest``. The crop lies inside the image, so
    any ``img_box`` of an earlier padding is dropped.

    ToCo's second global view (scale 0.4-1) and FSR's two global views
    (scale 0.32-1) use it; mmcv and mmseg have no such transform
    (mmpretrain's is not a dependency here).

    Args:
        size (int | tuple[int, int]): Output (h, w).
        scale (tuple[float, float]): Range of the area fraction. Defaults
            to (0.08, 1.0) (torchvision's).
        ratio (tuple[float, float]): Range of the aspect ratio w / h.
            Defaults to (3/4, 4/3).
        interpolation (str): 'bicubic', 'bilinear' or 'nearest'. Defaults
            to 'bicubic'.
    """

    def __init__(self,
                 size: Union[int, Sequence[int]],
                 scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'bicubic') -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f'size must be an int or (h, w), got {size}')
        if not 0 < scale[0] <= scale[1] or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f'scale {scale} and ratio {ratio} must be '
                             'increasing positive ranges')
        if interpolation not in ('bicubic', 'bilinear', 'nearest'):
            raise ValueError(f'unknown interpolation {interpolation!r}')
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = interpolation

    def get_params(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """(top, left, h, w) of the box, torchvision's rule."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = random.randint(0, height - h)
                left = random.randint(0, width - w)
                return top, left, h, w
        # Fallback: the central crop within the ratio range.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left, h, w = self.get_params(*img.shape[:2])
        out_h, out_w = self.size
        crop = img[top:top + h, left:left + w]
        results['img'] = mmcv.imresize(
            crop, (out_w, out_h),
            interpolation=self.interpolation,
            backend='pillow')
        results['img_shape'] = results['img'].shape[:2]
        for key in results.get('seg_fields', []):
            results[key] = self._resize_nearest(
                results[key][top:top + h, left:left + w], out_h, out_w)
        results.pop('img_box', None)
        return results

    @staticmethod
    def _resize_nearest(seg: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        """PIL's nearest resize of a map of any dtype.

        PIL (and mmcv's pillow backend) takes only some dtypes, so the
        int32 index image is resized instead and the labels gathered: the
        same pixels PIL picks for a uint8 map, for int64 or float maps too.
        """
        h, w = seg.shape[:2]
        idx = np.arange(h * w, dtype=np.int32).reshape(h, w)
        idx = np.asarray(
            Image.fromarray(idx).resize((out_w, out_h), Image.NEAREST))
        return seg.reshape(h * w, *seg.shape[2:])[idx]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'scale={self.scale}, ratio={self.ratio}, '
                f'interpolation={self.interpolation!r})')
