# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's discrepancy loss between the two students' features (Eq. 2-3)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.registry import MODELS

_MODES = ('code', 'paper')


@MODELS.register_module()
class DiscrepancyLoss(nn.Module):
    """Symmetrised feature discrepancy ``D(f1, sg(f2)) + D(f2, sg(f1))``.

    Each direction stops the gradient on the other student's features
    (``sg``), so each student is pushed away from a fixed copy of the other.

    * ``mode='code'`` (default, DuPL's code, which produced the published
      numbers): ``D(a, b) = 1 + mean cos(a_c, b_c)`` where ``a_c`` is the
      ``h*w``-long spatial vector of channel ``c`` of an image's final token
      map (``nn.CosineSimilarity(dim=-1, eps=1e-6)`` on ``(B, D, h*w)``),
      averaged over channels and images.
    * ``mode='paper'`` (Eq. 2): ``D(a, b) = -log(1 - cos(a, b) + eps)`` with
      the cosine of each image's flattened feature map, averaged over
      images. Two students built from the same pretrained weights start with
      ``cos = 1``; ``eps`` keeps the loss finite there.

    Both modes compute the cosine as PyTorch's ``cosine_similarity`` does,
    ``a . b / (max(||a||, cos_eps) * max(||b||, cos_eps))``, so ``cos_eps``
    only matters for vectors of norm below it (e.g. a channel that is nearly
    zero over the whole map).

    Args:
        mode (str): 'code' or 'paper'. Defaults to 'code'.
        eps (float): Epsilon of the paper's logarithm. Defaults to 1e-6.
        cos_eps (float): Norm clamp of the cosine. Defaults to 1e-6, the
            code's explicit ``nn.CosineSimilarity(dim=-1, eps=1e-6)``
            (PyTorch's default is 1e-8); 1e-8 reproduces this project's
            e6331ef behaviour (``F.cosine_similarity``'s default).
        loss_weight (float): Defaults to 0.1 (VOC; COCO 0.05).
        loss_name (str): Defaults to 'loss_dis'.
    """

    def __init__(self,
                 mode: str = 'code',
                 eps: float = 1e-6,
                 cos_eps: float = 1e-6,
                 loss_weight: float = 0.1,
                 loss_name: str = 'loss_dis') -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f'mode must be one of {_MODES}, got {mode!r}')
        if eps <= 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        if not cos_eps > 0:
            raise ValueError(f'cos_eps must be > 0, got {cos_eps}')
        self.mode = mode
        self.eps = eps
        self.cos_eps = cos_eps
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def _one_way(self, feat: Tensor, fixed: Tensor) -> Tensor:
        """``D(feat, sg(fixed))`` for (B, D, h, w) maps (scalar)."""
        fixed = fixed.detach()
        if self.mode == 'code':
            # The code's nn.CosineSimilarity(dim=-1, eps=1e-6) by default
            # (cos_eps), per channel over the h*w positions.
            cos = F.cosine_similarity(
                feat.flatten(2), fixed.flatten(2), dim=-1, eps=self.cos_eps)
            return (1. + cos).mean()
        cos = F.cosine_similarity(
            feat.flatten(1), fixed.flatten(1), dim=-1, eps=self.cos_eps)
        return -torch.log(1. - cos + self.eps).mean()

    def forward(self, feat1: Tensor, feat2: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            feat1 (Tensor): (B, D, h, w) final token map of student 1.
            feat2 (Tensor): (B, D, h, w) final token map of student 2.

        Returns:
            Tensor: Scalar, ``loss_weight * (D(f1, sg f2) + D(f2, sg f1))``.
        """
        if feat1.shape != feat2.shape:
            raise ValueError(f'feature maps differ in shape: '
                             f'{tuple(feat1.shape)} vs {tuple(feat2.shape)}')
        return self.loss_weight * (
            self._one_way(feat1, feat2) + self._one_way(feat2, feat1))

    @property
    def loss_name(self) -> str:
        """Name of the loss item."""
        return self._loss_name
