# Copyright (c) OpenMMLab. All rights reserved.
"""AGEN's confident seed regions (paper Eqs. 2-4 and the threshold delta).

From class-aware maps F (B, C, h, w) of a classification branch::

    M_c   = US(ReLU(F_c))                 (2)  bilinear, to the image size
    M^f_c = M_c / max(M_c)                (3)
    M^b   = (1 - max_c M^f_c)^d           (4)  d = 8

and the confident regions H of ``M^{f-b} = [M^b, M^f]``. The paper states
delta twice: "pixels more enormous than a threshold delta" (0.4 for AGM-3 /
4, 0.3 for AGM-5 and branch A) and, in the same sentence, "the pixels
belonging to the top 40 % of the largest value for each class". Both are
rules here (:data:`SEED_RULES`):

- ``'value'``: H_c = {u : M_c(u) > delta}, the background map included
  (it is part of M^{f-b}). The default: the sentence that defines H says
  so, and the numbers 0.3 / 0.4 differ per stage, which a fixed
  "top 40 %" would not.
- ``'top'``: H_c = the ``delta`` fraction of the image's pixels with the
  largest M_c (per class, background included).

Only the image's classes take part; a pixel in no H_c, or in more than one,
is ignored ("any unassigned and conflicting pixels are disregarded").
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .cam import IGNORE_INDEX

SEED_RULES = ('value', 'top')


def seed_maps(feats: Tensor,
              cls_label: Tensor,
              size: Tuple[int, int],
              bg_power: float = 8.,
              eps: float = 1e-5) -> Tensor:
    """``M^{f-b}`` (Eqs. 2-4): (B, C + 1, H, W), background first, absent
    classes zero.

    Args:
        feats (Tensor): (B, C, h, w) class-aware maps F.
        cls_label (Tensor): (B, C) image labels.
        size (tuple): (H, W) of the image.
        bg_power (float): d of Eq. 4. Defaults to 8.
        eps (float): Added to the maxima of Eq. 3. Defaults to 1e-5.
    """
    cams = F.interpolate(
        F.relu(feats), size=size, mode='bilinear', align_corners=False)
    cams = cams * cls_label[:, :, None, None].to(cams)
    cams = cams / (cams.amax(dim=(-2, -1), keepdim=True) + eps)
    bg = (1 - cams.amax(dim=1, keepdim=True)).pow(bg_power)
    return torch.cat([bg, cams], dim=1)


def confident_seeds(maps: Tensor,
                    cls_label: Tensor,
                    delta: float,
                    rule: str = 'value',
                    ignore_index: int = IGNORE_INDEX) -> Tensor:
    """The seed label of ``M^{f-b}``: each pixel in exactly one confident
    region H_c gets c (0 background), the others ``ignore_index``.

    Args:
        maps (Tensor): (B, C + 1, H, W) :func:`seed_maps`.
        cls_label (Tensor): (B, C) image labels.
        delta (float): The threshold (``'value'``) or the fraction of
            pixels (``'top'``).
        rule (str): One of :data:`SEED_RULES`.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: (B, H, W) int64 labels.
    """
    if rule not in SEED_RULES:
        raise ValueError(f'rule must be one of {SEED_RULES}, got {rule!r}')
    B, K, H, W = maps.shape
    present = torch.cat([cls_label.new_ones(B, 1), cls_label], dim=1) > 0
    if rule == 'value':
        inside = maps > delta
    else:
        if not 0 < delta <= 1:
            raise ValueError(f'the top rule takes a fraction in (0, 1], got '
                             f'{delta}')
        flat = maps.flatten(2)
        k = max(1, int(round(delta * H * W)))
        kth = flat.topk(k, dim=2).values[..., -1:]  # the k-th largest
        inside = (flat >= kth).view(B, K, H, W) & (maps > 0)
    inside = inside & present[:, :, None, None]
    count = inside.sum(dim=1)
    label = inside.float().argmax(dim=1)
    return torch.where(count == 1, label, torch.full_like(label, ignore_index))
