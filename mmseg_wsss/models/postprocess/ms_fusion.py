# Copyright (c) OpenMMLab. All rights reserved.
"""Multi-scale + flip test-time fusion of segmentation outputs.

The two pipelines of the official code (official_code_notes 1.10 and 4),
kept as the methods' own ``test_cfg`` choices; unlike mmseg's ``--tta``
(mean of softmax, probabilities dropped) both return the fused
probabilities, which the dense CRF then refines.
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.resize import resize


def _scaled(inputs: Tensor,
            scale: float,
            align_corners: bool,
            mode: str = 'bilinear') -> Tensor:
    if scale == 1.0:
        return inputs
    H, W = inputs.shape[-2:]
    size = (int(round(H * scale)), int(round(W * scale)))
    kwargs = {} if mode == 'nearest' else dict(align_corners=align_corners)
    return F.interpolate(inputs, size=size, mode=mode, **kwargs)


def fuse_max_over_scales(logit_fn: Callable[[Tensor], Tensor],
                         inputs: Tensor,
                         scales: Sequence[float] = (1.0, 1.25, 1.5),
                         flip: bool = True,
                         out_size: Optional[Tuple[int, int]] = None,
                         align_corners: bool = False) -> Tensor:
    """ToCo-family fusion: flip-sum per scale, max over scales, softmax.

    At each scale the logits of the view plus the un-flipped logits of its
    horizontal flip are resized (bilinear) to ``out_size``; the element-wise
    maximum over scales is taken in logit space, then a softmax over classes.

    Args:
        logit_fn (Callable): (N, 3, h, w) images to (N, C, h', w') logits.
        inputs (Tensor): (B, 3, H, W) normalised images.
        scales (Sequence[float]): Input scales. ToCo/DuPL/FSR VOC:
            (1.0, 1.25, 1.5).
        flip (bool): Add the flipped view. Defaults to True.
        out_size (tuple, optional): Output (H, W); defaults to the input's.
        align_corners (bool): For the resizes. Defaults to False.

    Returns:
        Tensor: (B, C, H, W) fused probabilities.
    """
    out_size = tuple(out_size or inputs.shape[-2:])
    fused = None
    for scale in scales:
        x = _scaled(inputs, scale, align_corners)
        logits = logit_fn(x)
        if flip:
            logits = logits + logit_fn(x.flip(-1)).flip(-1)
        logits = resize(logits, out_size, align_corners=align_corners)
        fused = logits if fused is None else torch.maximum(fused, logits)
    return fused.softmax(dim=1)


def fuse_mean_with_bg_power(mask_fn: Callable[[Tensor], Tuple[Tensor, Tensor]],
                            inputs: Tensor,
                            scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
                            flip: bool = True,
                            bg_pow: float = 3.0,
                            fp_cut: float = 0.1,
                            cls_label: Optional[Tensor] = None,
                            out_size: Optional[Tuple[int, int]] = None,
                            align_corners: bool = False) -> Tensor:
    """1Stage fusion: mean of softmax masks, background power, class cut.

    The softmax masks of every scale and flip (un-flipped, resized to
    ``out_size``) are averaged; foreground channels of classes whose
    image-level confidence (sigmoid of the class scores, max over views) is
    not above ``fp_cut`` are zeroed, and the background channel is raised
    to ``bg_pow``.

    Args:
        mask_fn (Callable): (N, 3, h, w) images to ``(masks, cls_logits)``:
            (N, C, h', w') softmax masks (background first) and (N, C-1)
            class scores.
        inputs (Tensor): (B, 3, H, W) normalised images.
        scales (Sequence[float]): 1Stage WideResNet-38: (1, 0.5, 1.5, 2.0).
        flip (bool): Add the flipped views. Defaults to True.
        bg_pow (float): Background exponent. Defaults to 3.
        fp_cut (float): Class presence threshold. Defaults to 0.1.
        cls_label (Tensor, optional): (B, C-1) ground-truth image labels used
            instead of the predicted presence (the code's ``USE_GT_LABELS``;
            not a fair evaluation).
        out_size (tuple, optional): Output (H, W); defaults to the input's.
        align_corners (bool): For the resizes. Defaults to False.

    Returns:
        Tensor: (B, C, H, W) fused scores (not renormalised, as the code).
    """
    out_size = tuple(out_size or inputs.shape[-2:])
    mask_sum, n_views, presence = 0., 0, None
    for scale in scales:
        x = _scaled(inputs, scale, align_corners)
        views = [(x, False)] + ([(x.flip(-1), True)] if flip else [])
        for view, flipped in views:
            masks, cls_logits = mask_fn(view)
            if flipped:
                masks = masks.flip(-1)
            mask_sum = mask_sum + resize(
                masks, out_size, align_corners=align_corners)
            n_views += 1
            conf = cls_logits.sigmoid()
            presence = conf if presence is None else torch.maximum(
                presence, conf)
    masks = mask_sum / n_views
    keep = cls_label.to(masks) if cls_label is not None else (
        presence > fp_cut).to(masks)
    return torch.cat(
        [masks[:, :1].pow(bg_pow), masks[:, 1:] * keep[:, :, None, None]],
        dim=1)


def fuse_mean_over_views(prob_fn: Callable[[Tensor], Tensor],
                         inputs: Tensor,
                         scales: Sequence[float] = (1.0, ),
                         flip: bool = False,
                         out_size: Optional[Tuple[int, int]] = None,
                         align_corners: bool = False) -> Tensor:
    """Mean of per-view maps over scales and flips (RRM / ASDT).

    Args:
        prob_fn (Callable): (N, 3, h, w) images to (N, K, h', w') maps
            (e.g. softmax probabilities).
        inputs (Tensor): (B, 3, H, W) normalised images.
        scales (Sequence[float]): Input scales. RRM / ASDT: (1.0, ).
        flip (bool): Add the flipped views. RRM / ASDT: False.
        out_size (tuple, optional): Output (H, W); defaults to the input's.
        align_corners (bool): For the resizes. Defaults to False.

    Returns:
        Tensor: (B, K, H, W) mean map (the single view's map, resized, for
        one scale without flip).
    """
    out_size = tuple(out_size or inputs.shape[-2:])
    total, n_views = 0., 0
    for scale in scales:
        x = _scaled(inputs, scale, align_corners)
        views = [(x, False)] + ([(x.flip(-1), True)] if flip else [])
        for view, flipped in views:
            maps = prob_fn(view)
            if flipped:
                maps = maps.flip(-1)
            total = total + resize(maps, out_size, align_corners=align_corners)
            n_views += 1
    return total / n_views
