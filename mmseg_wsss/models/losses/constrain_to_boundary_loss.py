# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class ConstrainToBoundaryLoss(nn.Module):
    """Constrain-to-boundary loss (SEC; AGEN Eq. 14): the mean over pixels
    of the KL divergence from the segmentation's probabilities S to their
    dense CRF R = CRF(I, S)::

        L = 1 / N * sum_u sum_c R_{u,c} log(R_{u,c} / S_{u,c})

    R is a constant (the CRF runs outside autograd). ``ratio_clamp``
    bounds ``R / S`` before the log, as the SEC ports do (0.05, 20); the
    paper states no constant (None gives Eq. 14 exactly, with S floored at
    1e-12 against a log of 0).

    Args:
        loss_weight (float): Defaults to 1.0.
        ratio_clamp (tuple, optional): Defaults to (0.05, 20.).
        loss_name (str): Defaults to 'loss_boundary'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 ratio_clamp: Optional[Tuple[float, float]] = (0.05, 20.),
                 loss_name: str = 'loss_boundary') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.ratio_clamp = ratio_clamp
        self._loss_name = loss_name

    def forward(self, probs: Tensor, crf_probs: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            probs (Tensor): (B, K, H, W) softmax of the segmentation.
            crf_probs (Tensor): (B, K, H, W) its dense CRF (no gradient).

        Returns:
            Tensor: Scalar.
        """
        if probs.shape != crf_probs.shape:
            raise ValueError(f'probs {tuple(probs.shape)} and crf_probs '
                             f'{tuple(crf_probs.shape)} differ')
        target = crf_probs.detach().to(probs)
        ratio = target / probs.clamp(min=1e-12)
        if self.ratio_clamp is not None:
            ratio = ratio.clamp(*self.ratio_clamp)
        # 0 * log 0 = 0 where the CRF gives a class no mass.
        kl = torch.special.xlogy(target, ratio).sum(dim=1)
        return self.loss_weight * kl.mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name
