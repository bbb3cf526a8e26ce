# Copyright (c) OpenMMLab. All rights reserved.
"""Pixel-adaptive mask refinement (PAMR) of 1Stage (paper Eq. 7-8).

Built on the dilated-neighbour machinery shared with PAR
(:mod:`.dilated_neighbors`); the definitions follow the official code
(official_code_notes 4), which differs from Eq. 8 of the paper: the image
distance is divided by ``0.1 * sigma`` rather than ``sigma ** 2``.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.registry import MODELS
from .dilated_neighbors import dilated_neighbor_sum, get_dilated_neighbors

# Added to the scaled standard deviation, as the code does: a constant
# neighbourhood (std 0) gives 0 / eps = 0 rather than NaN.
STD_EPS = 1e-8


@MODELS.register_module()
class PAMR(nn.Module):
    """Pixel-adaptive mask refinement (parameter-free, no gradient).

    With ``N = 8 * len(dilations)`` dilated neighbours ``j`` of pixel ``i``
    (3x3 windows without their centre, replicate padding):

    - ``sigma_i``: per RGB channel, the (unbiased) standard deviation of the
      image over the 9-position windows of *all* dilations (the centre counted
      once per dilation), as the code's ``LocalStDev``;
    - ``k_ij = mean_rgb( -|I_i - I_j| / (1e-8 + std_scale * sigma_i **
      std_power) )`` (the code: ``std_scale=0.1``, ``std_power=1``; the
      paper's Eq. 8: ``std_scale=1``, ``std_power=2``);
    - ``alpha_ij = softmax_j(k_ij)`` (the affinities of a pixel sum to 1);
    - ``num_iter`` times ``m_i <- sum_j alpha_ij * m_j`` (Eq. 7).

    A convex combination per step: a constant mask stays constant, and the
    per-pixel channel sum of a probability map stays 1.

    Args:
        num_iter (int): Refinement steps. Defaults to 10.
        dilations (Sequence[int]): Dilations of the 3x3 kernels.
            Defaults to (1, 2, 4, 8, 12, 24).
        std_scale (float): Factor of the local standard deviation (the
            code's 0.1). Defaults to 0.1.
        std_power (float): Power of the local standard deviation (the
            code's 1; Eq. 8 of the paper: 2). Defaults to 1.
    """

    def __init__(self,
                 num_iter: int = 10,
                 dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
                 std_scale: float = 0.1,
                 std_power: float = 1.) -> None:
        super().__init__()
        self.num_iter = int(num_iter)
        self.dilations = tuple(int(d) for d in dilations)
        self.std_scale = float(std_scale)
        self.std_power = float(std_power)
        if self.num_iter < 0 or self.std_scale <= 0:
            raise ValueError('num_iter must be >= 0 and std_scale > 0')

    def extra_repr(self) -> str:
        return (f'num_iter={self.num_iter}, dilations={self.dilations}, '
                f'std_scale={self.std_scale}, std_power={self.std_power}')

    def affinity(self, imgs: Tensor) -> Tensor:
        """Propagation weights of every pixel.

        Args:
            imgs (Tensor): (B, 3, H, W) images (1Stage: RGB in [0, 1]).

        Returns:
            Tensor: (B, 1, N, H, W) weights, summing to 1 over N.
        """
        neigh = get_dilated_neighbors(imgs, self.dilations)  # (B, 3, N, H, W)
        window = get_dilated_neighbors(
            imgs, self.dilations, include_center=True)
        std = window.std(dim=2, keepdim=True)  # (B, 3, 1, H, W)
        if self.std_power != 1.:
            std = std.pow(self.std_power)
        dist = (imgs.unsqueeze(2) - neigh).abs()
        logits = -dist / (STD_EPS + self.std_scale * std)
        return logits.mean(dim=1, keepdim=True).softmax(dim=2)

    @torch.no_grad()
    def forward(self, imgs: Tensor, masks: Tensor) -> Tensor:
        """Refine ``masks`` along the edges of ``imgs``.

        Args:
            imgs (Tensor): (B, 3, H, W) images (RGB in [0, 1]); resized to
                the mask resolution first (bilinear, align_corners=True, as
                the code's ``run_pamr``).
            masks (Tensor): (B, C, h, w) masks (softmax probabilities).

        Returns:
            Tensor: (B, C, h, w) refined masks, without gradient.
        """
        if imgs.dim() != 4 or masks.dim() != 4 or \
                imgs.shape[0] != masks.shape[0]:
            raise ValueError(f'expected (B, 3, H, W) images and (B, C, h, w) '
                             f'masks, got {tuple(imgs.shape)} and '
                             f'{tuple(masks.shape)}')
        # The logits divide by a std that can be ~0: half precision would
        # overflow them.
        dtype = torch.promote_types(masks.dtype, torch.float32)
        imgs, masks = imgs.to(dtype), masks.to(dtype)
        if imgs.shape[-2:] != masks.shape[-2:]:
            imgs = F.interpolate(
                imgs,
                size=masks.shape[-2:],
                mode='bilinear',
                align_corners=True)
        aff = self.affinity(imgs)
        for _ in range(self.num_iter):
            masks = dilated_neighbor_sum(masks, aff, self.dilations)
        return masks
