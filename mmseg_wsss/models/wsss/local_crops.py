# Copyright (c) OpenMMLab. All rights reserved.
"""ToCo's local crops for the class token contrast (CTC) and their flags.

official_code_notes 1.6 (ToCo ``utils/camutils.py`` ``cam_to_roi_mask2``,
``crop_from_roi_neg``; call site ``scripts/dist_train_voc_seg_neg.py``):
the ROI mask of the auxiliary CAM marks each pixel background (0),
uncertain (1) or confident foreground (2); local crops are centred on
pixels that are not confident foreground, and a crop is a *negative* of
the global views when its ROI mass is small (mostly background).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

# ROI values of ``cam_to_roi_mask``.
ROI_BACKGROUND, ROI_UNCERTAIN, ROI_FOREGROUND = 0, 1, 2


def cam_to_roi_mask(cam: Tensor,
                    cls_label: Optional[Tensor] = None,
                    low_thr: float = 0.25,
                    high_thr: float = 0.7) -> Tensor:
    """Three-level ROI mask of a normalised CAM.

    ``v = max_c(cam_c * label_c)``; ROI is 0 where ``v <= low_thr``, 2
    where ``v >= high_thr`` and 1 in between (ToCo: the multi-scale aux
    CAM, the training thresholds 0.25 / 0.7).

    Args:
        cam (Tensor): (B, C, H, W) foreground CAMs in [0, 1].
        cls_label (Tensor, optional): (B, C) multi-hot image labels; None
            keeps every class.
        low_thr (float): Defaults to 0.25.
        high_thr (float): Defaults to 0.7.

    Returns:
        Tensor: (B, H, W) int64 in {0, 1, 2}.
    """
    if cls_label is not None:
        cam = cam * cls_label[:, :, None, None].to(cam.dtype)
    value = cam.max(dim=1).values
    roi = torch.full_like(value, ROI_UNCERTAIN, dtype=torch.long)
    roi[value <= low_thr] = ROI_BACKGROUND
    roi[value >= high_thr] = ROI_FOREGROUND
    return roi


def crop_from_roi(
        images: Tensor,
        roi_mask: Tensor,
        num_crops: int = 8,
        crop_size: int = 96,
        neg_ratio: float = 0.2,
        generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Local crops centred on non-foreground pixels, with positive flags.

    Per image (as ToCo's ``crop_from_roi_neg``): candidate centres are the
    pixels at least ``crop_size // 2`` from the top/left and within the
    bottom/right margin whose ROI is <= 1 (background or uncertain); if
    fewer than ``num_crops`` exist, every such position is a candidate.
    ``num_crops`` of them are drawn without replacement (a random
    permutation), and the ``crop_size`` square whose top-left corner is the
    centre minus ``crop_size // 2`` is cut out. A crop is *negative* when
    ``sum(roi in crop) / crop_size**2 <= neg_ratio`` (ROI values 0/1/2, so
    a crop of confident foreground counts double).

    Choices where ToCo is silent: if an image has fewer positions than
    ``num_crops`` (tiny toy images), the permutation is repeated (crops
    repeat); the draw uses ``generator`` (ToCo: the global RNG).

    Args:
        images (Tensor): (B, C, H, W) images to crop (ToCo: the third,
            jittered copy of the training crop).
        roi_mask (Tensor): (B, H, W) ROI from :func:`cam_to_roi_mask`.
        num_crops (int): Local crops per image. Defaults to 8.
        crop_size (int): Side of a crop in pixels. Defaults to 96.
        neg_ratio (float): ROI fraction at or below which a crop is
            negative. Defaults to 0.2.
        generator (torch.Generator, optional): CPU generator for the draw.

    Returns:
        tuple[Tensor, Tensor]:

        - crops (B, num_crops, C, crop_size, crop_size).
        - positive (B, num_crops) bool, False for negative crops. The
          global views, always positive, are *not* included: prepend
          ``True`` for them before :class:`ClassTokenContrastLoss`.
    """
    B, C, H, W = images.shape
    if roi_mask.shape != (B, H, W):
        raise ValueError(f'roi_mask {tuple(roi_mask.shape)} must be '
                         f'(B, H, W) = {(B, H, W)}')
    margin = crop_size // 2
    inner_h, inner_w = H - 2 * margin, W - 2 * margin
    if inner_h <= 0 or inner_w <= 0 or crop_size > min(H, W):
        raise ValueError(f'crop_size {crop_size} does not fit images of '
                         f'{H}x{W}')
    crops = images.new_zeros(B, num_crops, C, crop_size, crop_size)
    positive = torch.ones(B, num_crops, dtype=torch.bool)
    roi_cpu = roi_mask.detach().to('cpu', torch.long)
    for b in range(B):
        # Top-left corners (= centre - margin) of the candidate crops.
        inner = roi_cpu[b, margin:margin + inner_h, margin:margin + inner_w]
        corners = (inner <= ROI_UNCERTAIN).nonzero()
        if corners.shape[0] < num_crops:
            corners = (inner >= 0).nonzero()
        order = torch.randperm(corners.shape[0], generator=generator)
        if order.numel() < num_crops:
            order = order.repeat(-(-num_crops // order.numel()))
        for i, (h0, w0) in enumerate(corners[order[:num_crops]].tolist()):
            crops[b, i] = images[b, :, h0:h0 + crop_size, w0:w0 + crop_size]
            mass = roi_cpu[b, h0:h0 + crop_size, w0:w0 + crop_size].sum()
            if mass.item() / (crop_size * crop_size) <= neg_ratio:
                positive[b, i] = False
    return crops, positive.to(images.device)
