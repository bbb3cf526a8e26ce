# Copyright (c) OpenMMLab. All rights reserved.
"""Pixel-adaptive refinement (PAR) and ToCo's background refinement of CAMs.

PAR comes from AFA and is used by ToCo, DuPL and FSR to refine CAM score maps
into segmentation pseudo labels (official_code_notes 1.7). DuPL's dynamic
threshold (notes 2) is the same refinement with a per-image high background
constant.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .dilated_neighbors import (dilated_neighbor_sum, get_dilated_neighbors,
                                neighbor_distances)

# Added to the standard deviations, as the official code does, so that a
# constant neighbourhood (std 0) gives 0 / eps = 0 rather than NaN.
STD_EPS = 1e-8


class PAR(nn.Module):
    """Pixel-adaptive refinement (AFA; used by ToCo, DuPL and FSR).

    With ``N = 8 * len(dilations)`` dilated neighbours ``j`` of pixel ``i``
    (replicate padding, centre excluded):

    - image affinity ``-( |I_i - I_j| / (std_j(I) + 1e-8) / w1 )^2`` per RGB
      channel, averaged over the channels, where ``std_j(I)`` is the
      (unbiased, ``torch.std`` default) standard deviation of that channel
      over the N neighbour values of pixel ``i``;
    - positional affinity ``-( d_j / std(d) / w1 )^2`` with ``d_j`` the
      neighbour distance (``d``, or ``d * sqrt(2)`` on diagonals);
    - ``aff = softmax_j(image aff) + w2 * softmax_j(positional aff)``;
    - ``num_iter`` times ``mask_i <- sum_j aff_ij * mask_j``.

    The affinities sum to ``1 + w2`` over the neighbours, so each iteration
    scales a per-pixel channel sum that is constant over the image by
    ``1 + w2``: a probability map comes out as ``(1 + w2) ** num_iter`` times
    a distribution (1.01 ** 10 ~ 1.105 by default). Callers take the argmax,
    which the scale does not change; nothing renormalises, as in the code.

    The module has no parameters or buffers. It is meant to run under
    ``torch.no_grad()`` but is differentiable.

    Args:
        dilations (Sequence[int]): Neighbour dilations.
            Defaults to (1, 2, 4, 8, 12, 24).
        num_iter (int): Propagation steps. Defaults to 10.
        w1 (float): Temperature of both affinities. Defaults to 0.3.
        w2 (float): Weight of the positional affinity. Defaults to 0.01.
    """

    def __init__(self,
                 dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
                 num_iter: int = 10,
                 w1: float = 0.3,
                 w2: float = 0.01) -> None:
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.num_iter = int(num_iter)
        self.w1 = float(w1)
        self.w2 = float(w2)
        # Validates the dilations early.
        neighbor_distances(self.dilations)

    def extra_repr(self) -> str:
        return (f'dilations={self.dilations}, num_iter={self.num_iter}, '
                f'w1={self.w1}, w2={self.w2}')

    def positional_affinity(self,
                            dtype: torch.dtype = torch.float32,
                            device=None) -> Tensor:
        """Positional logits ``-( d / std(d) / w1 )^2`` before the softmax.

        Returns:
            Tensor: (N,) logits, in neighbour stack order.
        """
        dist = neighbor_distances(self.dilations, dtype=dtype, device=device)
        return -(dist / (dist.std() + STD_EPS) / self.w1)**2

    def image_affinity(self, imgs: Tensor) -> Tensor:
        """Image logits before the softmax, averaged over the channels.

        Args:
            imgs (Tensor): (B, 3, H, W) images in [0, 1].

        Returns:
            Tensor: (B, 1, N, H, W) logits.
        """
        neigh = get_dilated_neighbors(imgs, self.dilations)  # (B, 3, N, H, W)
        diff = (neigh - imgs.unsqueeze(2)).abs()
        std = neigh.std(dim=2, keepdim=True)
        aff = -(diff / (std + STD_EPS) / self.w1)**2
        return aff.mean(dim=1, keepdim=True)

    def affinity(self, imgs: Tensor) -> Tensor:
        """Propagation weights ``softmax(image) + w2 * softmax(positional)``.

        Args:
            imgs (Tensor): (B, 3, H, W) images in [0, 1].

        Returns:
            Tensor: (B, 1, N, H, W) weights; they sum to ``1 + w2`` over N.
        """
        img_aff = self.image_affinity(imgs).softmax(dim=2)
        pos_aff = self.positional_affinity(imgs.dtype, imgs.device)
        return img_aff + self.w2 * pos_aff.softmax(dim=0).view(1, 1, -1, 1, 1)

    def forward(self, imgs: Tensor, masks: Tensor) -> Tensor:
        """Refine ``masks`` along the edges of ``imgs``.

        Args:
            imgs (Tensor): (B, 3, H, W) images in [0, 1].
            masks (Tensor): (B, C, h, w) score maps (e.g. probabilities);
                resized to (H, W) first (bilinear, align_corners=True).

        Returns:
            Tensor: (B, C, H, W) refined maps.
        """
        if imgs.dim() != 4 or masks.dim() != 4 or \
                imgs.shape[0] != masks.shape[0]:
            raise ValueError(f'expected (B, 3, H, W) images and (B, C, h, w) '
                             f'masks, got {tuple(imgs.shape)} and '
                             f'{tuple(masks.shape)}')
        # The image logits divide by a std that can be ~0; half precision
        # would overflow them to -inf (and NaN after the softmax).
        dtype = torch.promote_types(imgs.dtype, torch.float32)
        imgs, masks = imgs.to(dtype), masks.to(dtype)
        if masks.shape[-2:] != imgs.shape[-2:]:
            masks = F.interpolate(
                masks,
                size=imgs.shape[-2:],
                mode='bilinear',
                align_corners=True)
        aff = self.affinity(imgs)
        for _ in range(self.num_iter):
            masks = dilated_neighbor_sum(masks, aff, self.dilations)
        return masks
