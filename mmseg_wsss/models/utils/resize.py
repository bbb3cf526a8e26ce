# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence

import torch.nn.functional as F
from torch import Tensor


def resize(x: Tensor,
           size: Sequence[int],
           mode: str = 'bilinear',
           align_corners: bool = False) -> Tensor:
    """Resize the last two axes of ``x`` to ``size``; a no-op (the same
    tensor) at the same size, so that a scale-1 round trip is exact.

    Args:
        x (Tensor): (N, C, H, W) tensor; integer label maps with 'nearest'.
        size (Sequence[int]): Target (h, w).
        mode (str): 'bilinear' or 'nearest'. Defaults to 'bilinear'.
        align_corners (bool): For 'bilinear'. Defaults to False.

    Returns:
        Tensor: (N, C, h, w), the dtype of ``x``.
    """
    if mode not in ('bilinear', 'nearest'):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode}")
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == 'nearest':  # integer labels: interpolate does not take them
        return F.interpolate(x.float(), size=size, mode='nearest').to(x.dtype)
    # An explicit size (not scale_factor) keeps the sampling grid symmetric,
    # so that flipping and resizing commute exactly.
    return F.interpolate(
        x, size=size, mode='bilinear', align_corners=align_corners)
