# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmseg_wsss.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomCropWithBox(BaseTransform):
    """Random crop with constant padding that records the valid region.

    As the ToCo/DuPL pipeline does: an image smaller than the crop is placed
    at a random offset on a canvas filled with ``pad_val`` (0, black, before
    normalisation), then a random ``crop_size`` window is cut. The window's
    valid (non-padded) region is stored as ``img_box = [h0, h1, w0, w1]`` so
    that pseudo labels can mark the padding as ignore.

    Required keys: ``img``; optional ``gt_seg_map`` (and other ``seg_fields``).
    Modified keys: ``img``, ``img_shape``, seg fields.
    Added keys: ``img_box`` (np.ndarray of 4 int64).

    Args:
        crop_size (int | tuple[int, int]): (h, w) of the crop.
        pad_val (float): Image padding value. Defaults to 0.
        seg_pad_val (int): Mask padding value. Defaults to 255.
    """

    def __init__(self,
                 crop_size: Union[int, Sequence[int]],
                 pad_val: float = 0,
                 seg_pad_val: int = 255) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f'crop_size must be positive (h, w), got '
                             f'{crop_size}')
        self.crop_size = tuple(int(c) for c in crop_size)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    @cache_randomness
    def _offsets(self, h: int, w: int) -> Tuple[int, int, int, int]:
        ch, cw = self.crop_size
        # Where the image sits on the canvas, then where the window starts.
        ph = np.random.randint(0, max(ch - h, 0) + 1)
        pw = np.random.randint(0, max(cw - w, 0) + 1)
        H, W = max(h, ch), max(w, cw)
        y0 = np.random.randint(0, H - ch + 1)
        x0 = np.random.randint(0, W - cw + 1)
        return ph, pw, y0, x0

    def _crop(self, arr: np.ndarray, ph: int, pw: int, y0: int, x0: int,
              pad_val) -> np.ndarray:
        ch, cw = self.crop_size
        h, w = arr.shape[:2]
        canvas = np.full(
            (max(h, ch), max(w, cw)) + arr.shape[2:], pad_val, dtype=arr.dtype)
        canvas[ph:ph + h, pw:pw + w] = arr
        return canvas[y0:y0 + ch, x0:x0 + cw]

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        ph, pw, y0, x0 = self._offsets(h, w)
        results['img'] = self._crop(img, ph, pw, y0, x0, self.pad_val)
        for key in results.get('seg_fields', []):
            results[key] = self._crop(results[key], ph, pw, y0, x0,
                                      self.seg_pad_val)
        ch, cw = self.crop_size
        # Valid image rows/cols inside the window.
        h0, w0 = max(ph - y0, 0), max(pw - x0, 0)
        h1, w1 = min(ph + h - y0, ch), min(pw + w - x0, cw)
        results['img_box'] = np.array([h0, h1, w0, w1], dtype=np.int64)
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val})')
