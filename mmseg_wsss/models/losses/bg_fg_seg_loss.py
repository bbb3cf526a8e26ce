# Copyright (c) OpenMMLab. All rights reserved.
"""Background/foreground-balanced cross-entropy (ToCo's ``get_seg_loss``).

Pseudo labels of single-stage WSSS are dominated by background; averaging
the cross-entropy separately over background and foreground pixels and
weighting both halves equally keeps the foreground from being swamped.
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.models.wsss.cam import IGNORE_INDEX
from mmseg_wsss.registry import MODELS
from .utils import masked_mean


@MODELS.register_module()
class BgFgSegLoss(nn.Module):
    """``0.5 * CE(background pixels) + 0.5 * CE(foreground pixels)``.

    Each cross-entropy is the mean over its own pixels (``ignore_index``
    excluded). An empty set contributes 0 instead of NaN: a batch without
    background pixels gives ``0.5 * CE(fg)``, one without foreground pixels
    ``0.5 * CE(bg)``, and an all-ignore batch gives 0 with a zero gradient.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 0.1 (ToCo, FSR;
            DuPL uses 0.2).
        ignore_index (int): Label of unlabelled pixels. Defaults to 255.
        loss_name (str): Name of the loss item. Defaults to 'loss_seg'.
    """

    def __init__(self,
                 loss_weight: float = 0.1,
                 ignore_index: int = IGNORE_INDEX,
                 loss_name: str = 'loss_seg') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                seg_logits: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            seg_logits (Tensor): (B, K, H', W') logits, K = classes including
                background. Resized to the label size (bilinear,
                ``align_corners=False``, as the official training script does
                before ``get_seg_loss``) when the sizes differ.
            label (Tensor): (B, H, W) labels (0 bg, class ids,
                ``ignore_index``).
            weight (Tensor, optional): Per-pixel weights are not supported;
                accepted so that mmseg decode heads, which pass
                ``weight=None``, can use this loss.
            ignore_index (int, optional): Overrides ``self.ignore_index``
                (mmseg decode heads pass theirs).

        Returns:
            Tensor: Scalar loss.
        """
        if weight is not None:
            raise NotImplementedError(
                'BgFgSegLoss does not support per-pixel weights')
        if ignore_index is None:
            ignore_index = self.ignore_index
        if label.dim() == 4 and label.shape[1] == 1:
            label = label[:, 0]
        label = label.long()
        if seg_logits.shape[-2:] != label.shape[-2:]:
            seg_logits = F.interpolate(
                seg_logits,
                size=label.shape[-2:],
                mode='bilinear',
                align_corners=False)
        # Per-pixel CE; ignored pixels give 0 and are masked out below.
        ce = F.cross_entropy(
            seg_logits, label, ignore_index=ignore_index, reduction='none')
        bg = label == 0
        fg = (label != 0) & (label != ignore_index)
        loss = 0.5 * masked_mean(ce, bg) + 0.5 * masked_mean(ce, fg)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item (a ``loss_`` prefix makes it backward)."""
        return self._loss_name
