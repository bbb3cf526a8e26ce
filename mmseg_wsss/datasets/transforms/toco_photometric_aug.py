# Copyright (c) OpenMMLab. All rights reserved.
import random
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image, ImageFilter, ImageOps

from mmseg_wsss.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ToCoPhotometricAug(BaseTransform):
    """ToCo's photometric recipe on the training crop (notes 1.1).

    ``RandomApply(ColorJitter(0.4, 0.4, 0.2, 0.1), p=0.8)``, then
    ``RandomGrayscale(p=0.2)``, then a PIL Gaussian blur with radius
    ``U(0.1, 2.0)`` applied with ``p=1.0`` (the hidden detail: the main
    training image is always blurred), as torchvision/PIL do them on the
    RGB image. Colour jitter is torchvision's own ``ColorJitter`` (random
    order of the four adjustments), so the statistics match the code.

    The image is BGR uint8 in mmcv pipelines; it is converted to RGB PIL and
    back. Zero padding added earlier (``RandomCropWithBox``) is jittered and
    blurred too, as in the code (the crop comes before the photometric
    transforms there as well).

    Args:
        jitter (tuple): brightness, contrast, saturation, hue.
        jitter_prob (float): Defaults to 0.8.
        gray_prob (float): Defaults to 0.2.
        blur_prob (float): Defaults to 1.0.
        blur_radius (tuple): Range of the blur radius. Defaults to
            (0.1, 2.0).
        solarize_prob (float): Probability of PIL's ``solarize`` (threshold
            128), applied last: ToCo's second global view (p 0.2). Defaults
            to 0 (the training image).
    """

    def __init__(self,
                 jitter: Sequence[float] = (0.4, 0.4, 0.2, 0.1),
                 jitter_prob: float = 0.8,
                 gray_prob: float = 0.2,
                 blur_prob: float = 1.0,
                 blur_radius: Tuple[float, float] = (0.1, 2.0),
                 solarize_prob: float = 0.0) -> None:
        from torchvision.transforms import ColorJitter
        self.color_jitter = ColorJitter(*jitter)
        self.jitter = tuple(jitter)
        self.jitter_prob = jitter_prob
        self.gray_prob = gray_prob
        self.blur_prob = blur_prob
        self.blur_radius = tuple(blur_radius)
        self.solarize_prob = solarize_prob

    def transform(self, results: dict) -> dict:
        img = Image.fromarray(np.ascontiguousarray(results['img'][..., ::-1]))
        if random.random() < self.jitter_prob:
            img = self.color_jitter(img)
        if random.random() < self.gray_prob:
            img = img.convert('L').convert('RGB')
        if random.random() < self.blur_prob:
            img = img.filter(
                ImageFilter.GaussianBlur(
                    radius=random.uniform(*self.blur_radius)))
        # Drawn only when enabled, so the default consumes the same random
        # numbers as before.
        if self.solarize_prob > 0 and random.random() < self.solarize_prob:
            img = ImageOps.solarize(img, threshold=128)
        results['img'] = np.ascontiguousarray(np.asarray(img)[..., ::-1])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(jitter={self.jitter}, '
                f'jitter_prob={self.jitter_prob}, gray_prob={self.gray_prob}, '
                f'blur_prob={self.blur_prob}, '
                f'blur_radius={self.blur_radius}, '
                f'solarize_prob={self.solarize_prob})')
