# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class ContextAttention(nn.Module):
    """AGEN's context attention module (CoAM, paper Eqs. 5-9).

    Between the class-aware maps of two adjacent stages of the
    classification branch, ``F`` (the lower stage, (C, H, W)) and ``G``
    (the upper one, upsampled bilinearly to (H, W)), both read as (C, N)::

        a_ij = exp(F_i^T G_j),  abar_ij = a_ij / sum_j a_ij      (6, 7)
        E_i  = lambda * sum_j abar_ij F_j                        (8)
        out  = E + F                                             (9)

    i.e. a softmax over j of the affinities, the lower stage's maps
    re-weighted by it, and a learnable ``lambda`` that starts at 0 (the
    module is the identity at initialisation). Eq. 8 as printed weighs
    ``F`` (not ``G``) by the attention; that is what is implemented.

    Args:
        init_lambda (float): Initial lambda. Defaults to 0 (the paper).
    """

    def __init__(self, init_lambda: float = 0.) -> None:
        super().__init__()
        self.lam = nn.Parameter(torch.tensor(float(init_lambda)))

    def attention(self, lower: Tensor, upper: Tensor) -> Tensor:
        """(B, N, N) row-normalised affinities ``abar`` (Eqs. 6-7)."""
        B, C, H, W = lower.shape
        upper = F.interpolate(
            upper, size=(H, W), mode='bilinear', align_corners=False)
        f = lower.reshape(B, C, H * W)
        g = upper.reshape(B, C, H * W)
        return torch.bmm(f.transpose(1, 2), g).softmax(dim=-1)

    def forward(self, lower: Tensor, upper: Tensor) -> Tensor:
        """Enhance the lower stage's maps.

        Args:
            lower (Tensor): (B, C, H, W) class-aware maps F^{A_{n-1}}.
            upper (Tensor): (B, C, h, w) class-aware maps F^{A_n}.

        Returns:
            Tensor: (B, C, H, W) ``lambda * F abar^T + F``.
        """
        B, C, H, W = lower.shape
        attn = self.attention(lower, upper)  # (B, N_i, N_j)
        f = lower.reshape(B, C, H * W)
        enhanced = torch.bmm(f, attn.transpose(1, 2)).view(B, C, H, W)
        return self.lam * enhanced + lower
