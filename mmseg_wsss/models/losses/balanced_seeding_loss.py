# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.models.wsss.cam import IGNORE_INDEX
from mmseg_wsss.registry import MODELS

REDUCTIONS = ('image', 'batch')


@MODELS.register_module()
class BalancedSeedingLoss(nn.Module):
    """Balanced seeding loss (SEC / DSRG; AGEN Eq. 12).

    With seeds H_c (the label's pixels of class c; 0 background) and the
    segmentation's softmax S (resized to the label, bilinear)::

        l = - 1 / |H_fg| * sum_{c fg} sum_{u in H_c} log S_{u,c}
            - 1 / |H_bg| * sum_{u in H_bg} log S_{u,0}

    S is clamped to at least ``prob_floor`` and renormalised before the log
    (the SEC ports' ``clamp(1e-5)``). ``reduction='image'`` applies the
    formula per image and averages over the batch (the SEC ports);
    ``'batch'`` pools the seeds of the whole batch. An empty seed set
    contributes 0 (the ports divide by zero).

    Args:
        loss_weight (float): Defaults to 1.0.
        prob_floor (float): Defaults to 1e-5.
        reduction (str): 'image' (default) or 'batch'.
        ignore_index (int): Unlabelled pixels. Defaults to 255.
        loss_name (str): Defaults to 'loss_seed'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 prob_floor: float = 1e-5,
                 reduction: str = 'image',
                 ignore_index: int = IGNORE_INDEX,
                 loss_name: str = 'loss_seed') -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                             f'{reduction!r}')
        self.loss_weight = loss_weight
        self.prob_floor = prob_floor
        self.reduction = reduction
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                seg_logits: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            seg_logits (Tensor): (B, K, h, w) logits, background first.
            label (Tensor): (B, H, W) seeds (``ignore_index`` elsewhere).

        Returns:
            Tensor: Scalar.
        """
        if seg_logits.shape[-2:] != label.shape[-2:]:
            seg_logits = F.interpolate(
                seg_logits,
                size=label.shape[-2:],
                mode='bilinear',
                align_corners=False)
        probs = seg_logits.softmax(dim=1).clamp(min=self.prob_floor)
        logp = (probs / probs.sum(dim=1, keepdim=True)).log()
        valid = label != self.ignore_index
        target = label.masked_fill(~valid, 0).long()
        lp = logp.gather(1, target[:, None])[:, 0]
        fg, bg = valid & (label > 0), label == 0
        dims = (1, 2) if self.reduction == 'image' else (0, 1, 2)

        def term(mask: Tensor) -> Tensor:
            mask = mask.to(lp.dtype)
            return -(lp * mask).sum(dims) / mask.sum(dims).clamp(min=1)

        return self.loss_weight * (term(fg) + term(bg)).mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
