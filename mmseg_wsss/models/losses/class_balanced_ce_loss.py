# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..wsss.cam import IGNORE_INDEX


def class_pixel_counts(label: Tensor,
                       num_classes: int,
                       ignore_index: int = IGNORE_INDEX) -> Tensor:
    """(B, C) number of pixels of each class in each label map.

    Args:
        label (Tensor): (B, H, W) int64 labels.
        num_classes (int): C.
        ignore_index (int): Not counted. Defaults to 255.
    """
    # Ignored pixels go to an extra bin that is cut off.
    bins = torch.where(label == ignore_index,
                       torch.full_like(label, num_classes), label).flatten(1)
    counts = torch.zeros(label.shape[0], num_classes + 1, device=label.device)
    counts.scatter_add_(1, bins, torch.ones_like(bins, dtype=counts.dtype))
    return counts[:, :num_classes]


def class_balanced_weights(label: Tensor,
                           num_classes: int,
                           ignore_index: int = IGNORE_INDEX,
                           counts: Optional[Tensor] = None) -> Tensor:
    """Per-pixel weight ``(N - N_c) / (1 + N)`` of 1Stage's balanced CE.

    ``N_c`` counts the pixels of the pixel's pseudo class ``c`` in its image
    and ``N`` all labelled (non-ignored) pixels of the image: the smaller a
    class, the larger its pixels' weight. Ignored pixels weigh 0.

    Args:
        label (Tensor): (B, H, W) int64 pseudo labels.
        num_classes (int): C (background included).
        ignore_index (int): Defaults to 255.
        counts (Tensor, optional): (B, C) :func:`class_pixel_counts` of
            ``label``, if already computed.

    Returns:
        Tensor: (B, H, W) float weights.
    """
    if counts is None:
        counts = class_pixel_counts(label, num_classes, ignore_index)
    total = counts.sum(dim=1, keepdim=True)
    class_weight = (total - counts) / (1. + total)
    valid = label != ignore_index
    safe = torch.where(valid, label, torch.zeros_like(label))
    weight = class_weight.gather(1, safe.flatten(1)).view_as(label)
    return weight * valid


@MODELS.register_module()
class ClassBalancedCELoss(nn.Module):
    """1Stage's class-balanced cross-entropy (``balanced_mask_loss_ce``).

    .. code:: text

        logits (bilinear, align_corners=True) -> label size
        per pixel  w * CE(logits, label), w = (N - N_c) / (1 + N), 0 if ignored
        per image  mean over all H x W pixels (ignored pixels count as 0)
                   x 1 if the pseudo label holds exactly as many classes as
                     the image-level label + background, else 0
        loss       loss_weight x mean over the batch

    The image filter is the paper's "we fully discard images for which some
    of the ground-truth classes do not give rise to any confident pseudo
    ground-truth pixels" (a dropped image still counts in the batch mean, as
    in the code).

    Args:
        loss_weight (float): Defaults to 1.0 (the code's MASK_LOSS_BCE).
        ignore_index (int): Defaults to 255.
        align_corners (bool): Of the logits' resize. Defaults to True.
        loss_name (str): Defaults to 'loss_seg'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 ignore_index: int = IGNORE_INDEX,
                 align_corners: bool = True,
                 loss_name: str = 'loss_seg') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self,
                seg_logits: Tensor,
                label: Tensor,
                cls_label: Optional[Tensor] = None) -> Tensor:
        """Balanced CE of a batch.

        Args:
            seg_logits (Tensor): (B, C, h, w) logits, background first.
            label (Tensor): (B, H, W) int64 pseudo labels.
            cls_label (Tensor, optional): (B, C-1) multi-hot image labels;
                None keeps every image.

        Returns:
            Tensor: Scalar loss.
        """
        B, C = seg_logits.shape[:2]
        if tuple(seg_logits.shape[-2:]) != tuple(label.shape[-2:]):
            seg_logits = F.interpolate(
                seg_logits,
                size=label.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners)
        counts = class_pixel_counts(label, C, self.ignore_index)
        weight = class_balanced_weights(label, C, self.ignore_index, counts)
        ce = F.cross_entropy(
            seg_logits.float(),
            label,
            ignore_index=self.ignore_index,
            reduction='none')
        per_image = (weight * ce).flatten(1).mean(dim=1)
        if cls_label is not None:
            num_pseudo = (counts > 0).sum(dim=1)
            keep = num_pseudo == cls_label.sum(dim=1).round().long() + 1
            per_image = per_image * keep.to(per_image)
        return self.loss_weight * per_image.mean()
