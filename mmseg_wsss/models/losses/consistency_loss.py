# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's "every pixel matters" consistency loss (Eq. 8)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.models.wsss.cam import IGNORE_INDEX
from mmseg_wsss.registry import MODELS
from .utils import masked_mean


@MODELS.register_module()
class ConsistencyLoss(nn.Module):
    """Cross-entropy of the strong-view prediction on unlabelled pixels.

    ``loss = loss_weight * sum_{x in M} CE(P_strong(x), T(x)) / |M|``

    * Code form (DuPL's code, the default): ``target=None``; the target
      ``T`` is the argmax of the branch's own weak-view prediction
      (detached) and ``M`` is ``mask`` restricted to the pixels where that
      prediction's softmax confidence exceeds ``conf_thr``.
    * Paper form (Eq. 8): the caller passes ``target`` (the pseudo label) and
      ``M = mask`` (the filtered pixels); ``conf_thr`` is not used.

    An empty ``M`` gives 0 (not NaN). The strong-view logits must already be
    mapped back to the label geometry (``StrongView.invert``).

    Args:
        conf_thr (float): Confidence threshold of the code form. Defaults to
            0.9.
        loss_weight (float): Defaults to 0.05.
        ignore_index (int): Label value never used as a target. Defaults to
            255.
        loss_name (str): Defaults to 'loss_consist' (kept distinct from the
            energy loss's 'loss_energy').
    """

    def __init__(self,
                 conf_thr: float = 0.9,
                 loss_weight: float = 0.05,
                 ignore_index: int = IGNORE_INDEX,
                 loss_name: str = 'loss_consist') -> None:
        super().__init__()
        if not 0 <= conf_thr < 1:
            raise ValueError(f'conf_thr must be in [0, 1), got {conf_thr}')
        self.conf_thr = conf_thr
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                strong_logits: Tensor,
                mask: Tensor,
                weak_logits: Optional[Tensor] = None,
                target: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            strong_logits (Tensor): (B, K, H, W) strong-view logits, already
                un-flipped and resized to (H, W).
            mask (Tensor): (B, H, W) bool, the pixels to regularise.
            weak_logits (Tensor, optional): (B, K, H', W') weak-view logits of
                the same branch (code form); resized to (H, W) bilinearly.
            target (Tensor, optional): (B, H, W) labels (paper form).

        Returns:
            Tensor: Scalar loss.
        """
        if (weak_logits is None) == (target is None):
            raise ValueError('pass exactly one of weak_logits (code form) '
                             'and target (paper form)')
        size = strong_logits.shape[-2:]
        if mask.shape[-2:] != size:
            raise ValueError(f'mask {tuple(mask.shape)} does not match the '
                             f'logits {tuple(strong_logits.shape)}')
        mask = mask.bool()
        if target is None:
            with torch.no_grad():
                if weak_logits.shape[-2:] != size:
                    weak_logits = F.interpolate(
                        weak_logits.float(),
                        size=size,
                        mode='bilinear',
                        align_corners=False)
                conf, target = weak_logits.softmax(dim=1).max(dim=1)
                mask = mask & (conf > self.conf_thr)
        target = target.long()
        mask = mask & (target != self.ignore_index)
        ce = F.cross_entropy(
            strong_logits, target.masked_fill(~mask, 0), reduction='none')
        return self.loss_weight * masked_mean(ce, mask)

    @property
    def loss_name(self) -> str:
        """Name of the loss item."""
        return self._loss_name
