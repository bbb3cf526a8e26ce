# Copyright (c) OpenMMLab. All rights reserved.
"""ToCo's patch token contrast (PTC) loss and its token-level pseudo label.

PTC pulls together the final-layer patch tokens that the (auxiliary) CAM
gives the same label and pushes apart those with different labels, which
counters the over-smoothing of deep ViT tokens (ToCo, CVPR 2023; reused by
DuPL and FSR with weight 0.2).
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.models.wsss.cam import IGNORE_INDEX
from mmseg_wsss.registry import MODELS

# ``F.normalize`` eps used for the token features (as the official code).
_NORM_EPS = 1e-8


def _pair_masks(label: Tensor,
                ignore_index: int = IGNORE_INDEX) -> Tuple[Tensor, Tensor]:
    """Positive / negative token-pair masks of each image.

    Args:
        label (Tensor): (B, h, w) token-level labels.
        ignore_index (int): Label of tokens without a pseudo label.

    Returns:
        tuple[Tensor, Tensor]: (B, hw, hw) bool masks of the pairs with equal
        (positive) and different (negative) labels; pairs with an ignored
        token and the diagonal (a token with itself) are in neither.
    """
    flat = label.flatten(1)
    same = flat[:, :, None] == flat[:, None, :]
    valid = flat != ignore_index
    valid_pair = valid[:, :, None] & valid[:, None, :]
    # A token paired with itself is always "similar" (|cos| = 1) and would
    # only add a constant to the positive term, so it is excluded.
    eye = torch.eye(flat.shape[1], dtype=torch.bool, device=label.device)
    valid_pair = valid_pair & ~eye
    return same & valid_pair, ~same & valid_pair


def label_to_affinity(label: Tensor,
                      ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Pairwise affinity target of a token-level label map.

    ``A_ij = 1`` where tokens ``i`` and ``j`` share a label (background pairs
    included), ``0`` where they differ, and ``ignore_index`` on the rows and
    columns of ignored tokens and on the diagonal. Pairs are only formed
    within an image.

    Args:
        label (Tensor): (B, h, w) labels (0 bg, class ids, ``ignore_index``).
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: (B, hw, hw) int64 affinity with values 0 / 1 /
        ``ignore_index``.
    """
    pos, neg = _pair_masks(label, ignore_index)
    aff = torch.full(
        pos.shape, ignore_index, dtype=torch.long, device=label.device)
    aff[pos] = 1
    aff[neg] = 0
    return aff


@MODELS.register_module()
class PTCLoss(nn.Module):
    """Patch token contrast loss (ToCo, exact form of the official code).

    With ``S = |cos(f_i, f_j)|`` between the L2-normalised tokens and the
    affinity target of :func:`label_to_affinity`::

        loss = 0.5 * (1 - sum_{A=1} S / (N_pos + 1))
             + 0.5 * sum_{A=0} S / (N_neg + 1)

    The sums and counts are pooled over the whole batch (pairs only within an
    image), so an image with many valid tokens weighs more than one with few;
    this is not the mean of per-image losses. The ``+ 1`` keeps empty sets
    finite: a batch without any valid pair gives the constant 0.5 (times
    ``loss_weight``) with zero gradient.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 0.2 (ToCo, DuPL,
            FSR).
        loss_name (str): Name of the loss item. Defaults to 'loss_ptc'.
        ignore_index (int): Label of tokens without a pseudo label.
            Defaults to 255.
    """

    def __init__(self,
                 loss_weight: float = 0.2,
                 loss_name: str = 'loss_ptc',
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self, tokens: Tensor, label: Tensor, **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            tokens (Tensor): (B, D, h, w) final-layer patch tokens.
            label (Tensor): (B, h, w) token-level pseudo labels (0 bg, class
                ids, ``ignore_index``), e.g. from :func:`ptc_label_from_cam`.

        Returns:
            Tensor: Scalar loss.
        """
        if label.shape[-2:] != tokens.shape[-2:] or \
                label.shape[0] != tokens.shape[0]:
            raise ValueError(
                f'label {tuple(label.shape)} must be (B, h, w) of the token '
                f'map {tuple(tokens.shape)}')
        # float32 even under AMP: the pooled sums run over up to B * (hw)^2
        # similarities and would overflow float16.
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            feat = F.normalize(
                tokens.flatten(2).float(), p=2, dim=1, eps=_NORM_EPS)
            # (B, hw, hw) absolute cosine: anti-parallel tokens count as
            # similar.
            sim = torch.matmul(feat.transpose(1, 2), feat).abs()
        pos, neg = _pair_masks(label, self.ignore_index)
        pos_term = (sim * pos).sum() / (pos.sum() + 1)
        neg_term = (sim * neg).sum() / (neg.sum() + 1)
        loss = 0.5 * (1 - pos_term) + 0.5 * neg_term
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item (a ``loss_`` prefix makes it backward)."""
        return self._loss_name
