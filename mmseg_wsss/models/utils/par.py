# Copyright (c) OpenMMLab. All rights reserved.
"""Pixel-adaptive refinement (PAR) and ToCo's background refinement of CAMs.

PAR comes from AFA and is used by ToCo, DuPL and FSR to refine CAM score maps
into segmentation pseudo labels (official_code_notes 1.7). DuPL's dynamic
threshold (notes 2) is the same refinement with a per-image high background
constant.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .cam import IGNORE_INDEX, cam_score_map, mask_outside_box
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


def _resize(x: Tensor, size) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


@torch.no_grad()
def refine_cams_with_bkg(par: PAR,
                         imgs: Tensor,
                         cams: Tensor,
                         cls_label: Tensor,
                         high_thr: Union[float, Tensor] = 0.7,
                         low_thr: Union[float, Tensor] = 0.25,
                         img_box: Optional[Sequence[Sequence[int]]] = None,
                         ignore_index: int = IGNORE_INDEX,
                         down_scale: int = 2) -> Tensor:
    """PAR-refined CAM pseudo labels with two background constants.

    ToCo's ``refine_cams_with_bkg_v2`` (official_code_notes 1.7); with a
    per-image ``high_thr`` it is DuPL's ``refine_cams_with_dynamic_thres``.
    Per image, two score stacks ``[high_thr, CAMs of the present classes]``
    and ``[low_thr, CAMs of the present classes]`` are soft-maxed over their
    channels, refined by PAR on the image downsampled by ``down_scale``,
    upsampled to the crop and arg-maxed into ``L_h`` and ``L_l``. The label
    is ``L_h`` where it is foreground; where ``L_h`` is background it is
    background if ``L_l`` is background too (background wins even against
    the low constant), else ignore. Outside ``img_box`` it is ignore.

    Absent classes take no part in the softmax (they are not in the stack),
    so they never appear. The images are processed together: each image's
    stack is padded to the largest number of present classes in the batch
    with channels of probability 0, which PAR (linear per channel) keeps at
    0 and the argmax skips; the result equals the per-image loop.

    Args:
        par (PAR): The refinement module.
        imgs (Tensor): (B, 3, H, W) crops in [0, 1] (denormalised).
        cams (Tensor): (B, C, h, w) normalised foreground CAMs, usually at
            (H, W); resized to PAR's resolution (bilinear).
        cls_label (Tensor): (B, C) multi-hot image labels.
        high_thr (float | Tensor): High background constant, or a (B,)
            tensor of per-image constants. Defaults to 0.7.
        low_thr (float | Tensor): Low background constant (or (B,)).
            Defaults to 0.25.
        img_box (Sequence, optional): Per image ``[h0, h1, w0, w1]`` of the
            valid (un-padded) region.
        ignore_index (int): Defaults to 255.
        down_scale (int): PAR runs at ``(H // down_scale, W // down_scale)``.
            Defaults to 2.

    Returns:
        Tensor: (B, H, W) int64 labels: 0 background, ``k + 1`` for class
        channel ``k``, ``ignore_index``.
    """
    B, _, H, W = imgs.shape
    if cams.shape[:2] != cls_label.shape or cams.shape[0] != B:
        raise ValueError(f'cams {tuple(cams.shape)}, cls_label '
                         f'{tuple(cls_label.shape)} and imgs '
                         f'{tuple(imgs.shape)} do not match')
    size = (H // down_scale, W // down_scale)
    small_imgs = _resize(imgs, size)
    # The CAMs (usually at the crop size) are brought to PAR's resolution
    # before the softmax, with the same resize as the image; a bilinear
    # resize leaves the constant background channels unchanged, and PAR's
    # own (align_corners=True) resize of the masks becomes a no-op.
    small_cams = _resize(cams, size)

    # Channel ids of each image's stack: background (0), then its present
    # classes in increasing order, padded (with 0) to the batch maximum.
    present = torch.cat([cls_label.new_ones(B, 1), cls_label],
                        dim=1).to(cams.device) > 0
    num_valid = present.sum(dim=1)
    max_valid = int(num_valid.max())
    keys = torch.sort((~present).to(torch.int8), dim=1, stable=True)[1]
    keys = keys[:, :max_valid]  # (B, K)
    valid = torch.arange(max_valid, device=cams.device) < num_valid[:, None]

    def present_probs(bkg: Union[float, Tensor]) -> Tensor:
        scores = cam_score_map(small_cams, cls_label.to(cams.device), bkg)
        scores = scores.gather(1, keys[:, :, None, None].expand(-1, -1, *size))
        scores = scores.masked_fill(~valid[:, :, None, None], float('-inf'))
        return scores.softmax(dim=1)

    probs = torch.cat([present_probs(high_thr), present_probs(low_thr)], dim=1)
    # Both stacks share the image affinity: one PAR call for the two.
    refined = par(small_imgs, probs)
    refined = _resize(refined, (H, W))
    refined = refined.masked_fill(~valid.repeat(1, 2)[:, :, None, None],
                                  float('-inf'))

    def to_label(scores: Tensor) -> Tensor:
        idx = scores.argmax(dim=1)  # position in the stack
        return keys.gather(1, idx.flatten(1)).view(B, H, W)

    label_h = to_label(refined[:, :max_valid])
    label_l = to_label(refined[:, max_valid:])
    label = label_h.clone()
    label[label_h == 0] = ignore_index
    label[(label_h == 0) & (label_l == 0)] = 0
    if img_box is not None:
        label = mask_outside_box(label, img_box, ignore_index)
    return label
