# Copyright (c) OpenMMLab. All rights reserved.
"""1Stage's class scores from segmentation masks (paper Sec. 3.2).

Normalised global weighted pooling (nGWP, Eq. 3) plus the focal mask
penalty (Eq. 5), computed as the official code does (official_code_notes 4):
the pooled "features" are the mask logits themselves (background logit
included), and the epsilon of Eq. 3 is 1.
"""
from typing import Tuple

import torch
from torch import Tensor


def add_background_logit(logits: Tensor, bg_logit: float = 1.) -> Tensor:
    """Prepend a constant background channel to foreground logits.

    Args:
        logits (Tensor): (B, C-1, h, w) foreground logits.
        bg_logit (float): The constant. Defaults to 1 (the code).

    Returns:
        Tensor: (B, C, h, w), background first.
    """
    return torch.cat([torch.full_like(logits[:, :1], bg_logit), logits], 1)


def ngwp_scores(logits: Tensor, masks: Tensor, eps: float = 1.) -> Tensor:
    """Eq. 3: ``y_c = sum_i m_ci * x_ci / (eps + sum_i m_ci)``.

    Args:
        logits (Tensor): (B, C, h, w) logits ``x`` (background included).
        masks (Tensor): (B, C, h, w) softmax masks ``m`` of ``logits``.
        eps (float): Defaults to 1 (the code).

    Returns:
        Tensor: (B, C) scores.
    """
    return (logits * masks).sum(dim=(-2, -1)) / (eps + masks.sum(dim=(-2, -1)))


def focal_mask_penalty(masks: Tensor,
                       p: float = 3.,
                       lam: float = 0.01) -> Tensor:
    """Eq. 5: ``(1 - mean_i m_ci) ** p * log(lam + mean_i m_ci)``.

    Args:
        masks (Tensor): (B, C, h, w) masks in [0, 1].
        p (float): Focal exponent. Defaults to 3.
        lam (float): Penalty magnitude lambda. Defaults to 0.01.

    Returns:
        Tensor: (B, C) penalties (<= 0 for lam <= 1).
    """
    mean = masks.mean(dim=(-2, -1))
    return (1. - mean).pow(p) * torch.log(lam + mean)


def mask_class_scores(fg_logits: Tensor,
                      bg_logit: float = 1.,
                      focal_p: float = 3.,
                      focal_lambda: float = 0.01,
                      ngwp_eps: float = 1.) -> Tuple[Tensor, Tensor, Tensor]:
    """Logits, softmax masks and image-level class scores of 1Stage.

    Args:
        fg_logits (Tensor): (B, C-1, h, w) foreground logits of the decoder.
        bg_logit (float): Constant background logit. Defaults to 1.
        focal_p (float): p of Eq. 5. Defaults to 3.
        focal_lambda (float): lambda of Eq. 5. Defaults to 0.01.
        ngwp_eps (float): epsilon of Eq. 3. Defaults to 1.

    Returns:
        tuple[Tensor]: ``logits`` (B, C, h, w) with the background first,
        ``masks`` (B, C, h, w) = softmax of ``logits``, and ``cls_scores``
        (B, C-1) = nGWP + focal penalty of the foreground classes.
    """
    logits = add_background_logit(fg_logits, bg_logit)
    masks = logits.softmax(dim=1)
    scores = ngwp_scores(logits, masks, ngwp_eps) + focal_mask_penalty(
        masks, focal_p, focal_lambda)
    return logits, masks, scores[:, 1:]
