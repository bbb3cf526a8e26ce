# Copyright (c) OpenMMLab. All rights reserved.
"""1Stage's pseudo labels from refined masks (``pseudo_gtmask`` of the code,
official_code_notes 4)."""
import torch
from torch import Tensor

from .cam import IGNORE_INDEX


def masks_to_pseudo_label(masks: Tensor,
                          fg_ratio: float = 0.6,
                          bg_ratio: float = 0.7,
                          min_thr: float = 0.2,
                          ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Relative-threshold pseudo label of background-first masks.

    Per image and class, threshold ``max(min_thr, ratio * max_pixel(m_c))``
    with ``ratio = bg_ratio`` for background (channel 0) and ``fg_ratio``
    for the others; a pixel is positive for a class when its mask value is
    strictly above the threshold. Pixels positive for more than one class
    (conflicts) or for none (empty) are ``ignore_index``. Zero the channels
    of absent classes first (their maximum 0 gives the floor ``min_thr``, so
    they are never positive).

    Args:
        masks (Tensor): (B, C, H, W) masks, background first.
        fg_ratio (float): Foreground ratio of the class maximum. Defaults to
            0.6.
        bg_ratio (float): Background ratio. Defaults to 0.7.
        min_thr (float): Floor of every threshold. Defaults to 0.2.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: (B, H, W) int64 labels (class id or ``ignore_index``).
    """
    ratio = torch.full((masks.shape[1], ),
                       fg_ratio,
                       dtype=masks.dtype,
                       device=masks.device)
    ratio[0] = bg_ratio
    peak = masks.amax(dim=(-2, -1), keepdim=True)
    thr = (peak * ratio[:, None, None]).clamp(min=min_thr)
    positive = masks > thr
    label = positive.to(masks.dtype).argmax(dim=1)
    label[positive.sum(dim=1) != 1] = ignore_index
    return label
