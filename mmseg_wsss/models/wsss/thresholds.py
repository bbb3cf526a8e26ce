# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's dynamic (cosine-annealed) foreground threshold (Eq. 5)."""
import math
from typing import Sequence, Union

import torch
from torch import Tensor

_ORIGINS = ('code', 'paper')


def cosine_threshold(iteration: int,
                     start: float,
                     target: Union[float, Sequence[float], Tensor],
                     max_iters: int,
                     warmup_iters: int = 0,
                     origin: str = 'code') -> Tensor:
    """Per-class high threshold annealed from ``start`` to ``target``.

    * ``origin='code'`` (DuPL's code): ``t = iteration - warmup_iters``,
      ``T = max_iters - warmup_iters`` and
      ``thr = start + (target - start) * (1 - cos(pi * t / (T - 1))) / 2``;
      before the warm-up ends (``t < 0``) the threshold stays at ``start``.
    * ``origin='paper'`` (Eq. 5): ``t = iteration``, ``T = max_iters`` and
      ``thr = start - (start - target) * (1 - cos(pi * t / T)) / 2``.

    Args:
        iteration (int): Current (0-based) iteration.
        start (float): ``tau_h(0)`` (VOC 0.7, COCO 0.65).
        target (float | Sequence[float] | Tensor): ``tau_h(T)``, one value or
            one per foreground class (DuPL's VOC table).
        max_iters (int): Total training iterations.
        warmup_iters (int): The code's origin (``cam_iters``: 2,000 on VOC).
        origin (str): 'code' or 'paper'.

    Returns:
        Tensor: (C,) float32 thresholds (a 0-d tensor for a scalar target).
    """
    if origin not in _ORIGINS:
        raise ValueError(f'origin must be one of {_ORIGINS}, got {origin!r}')
    target = torch.as_tensor(target, dtype=torch.float32)
    if origin == 'code':
        t = max(iteration - warmup_iters, 0)
        period = max_iters - warmup_iters - 1
    else:
        t = max(iteration, 0)
        period = max_iters
    if period <= 0:
        raise ValueError(f'no annealing period: max_iters={max_iters}, '
                         f'warmup_iters={warmup_iters}')
    progress = (1. - math.cos(math.pi * min(t, period) / period)) / 2.
    return start + (target - start) * progress


def per_image_threshold(class_thr: Tensor, cls_label: Tensor,
                        default: float) -> Tensor:
    """Each image's threshold: the maximum over its present classes.

    Args:
        class_thr (Tensor): (C,) per-class thresholds (or a 0-d tensor).
        cls_label (Tensor): (B, C) multi-hot image labels.
        default (float): Threshold of an image without any class.

    Returns:
        Tensor: (B,) thresholds on ``cls_label``'s device.
    """
    class_thr = class_thr.to(cls_label.device, torch.float32)
    if class_thr.dim() == 0:
        class_thr = class_thr.expand(cls_label.shape[1])
    if class_thr.shape[0] != cls_label.shape[1]:
        raise ValueError(f'{class_thr.shape[0]} class thresholds for '
                         f'{cls_label.shape[1]} classes')
    present = cls_label > 0
    thr = class_thr[None].expand_as(cls_label).masked_fill(
        ~present, float('-inf')).max(dim=1).values
    return torch.where(present.any(dim=1), thr, torch.full_like(thr, default))
