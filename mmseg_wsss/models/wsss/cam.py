# Copyright (c) OpenMMLab. All rights reserved.
"""The shared class activation map (CAM) core, used by every method.

Conventions: ``C`` below counts foreground classes only (the classifier's
outputs, class id ``k + 1`` is channel ``k``); label maps use class ids with
0 = background and ``ignore_index`` (255) = ignore.
"""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = 255
# Where the classes of a prediction come from (:func:`present_classes`).
CLS_SOURCES = ('pred', 'gt')
CAM_EPS = 1e-5


def pool_features(feat: Tensor, pooling: str = 'gap') -> Tensor:
    """Global pooling of a feature map.

    Args:
        feat (Tensor): (B, D, h, w) features.
        pooling (str): 'gap' (average) or 'gmp' (max).

    Returns:
        Tensor: (B, D, 1, 1) pooled features.
    """
    if pooling == 'gap':
        return F.adaptive_avg_pool2d(feat, 1)
    if pooling == 'gmp':
        return F.adaptive_max_pool2d(feat, 1)
    raise ValueError(f'pooling must be "gap" or "gmp", got {pooling!r}')


def cam_from_weights(feat: Tensor, weight: Tensor) -> Tensor:
    """Raw (un-rectified) CAMs: the classifier applied at every location.

    Args:
        feat (Tensor): (B, D, h, w) features.
        weight (Tensor): (C, D) or (C, D, 1, 1) classifier weights.

    Returns:
        Tensor: (B, C, h, w) raw CAMs.
    """
    if weight.dim() == 2:
        weight = weight[:, :, None, None]
    return F.conv2d(feat, weight)


def normalize_cam(cam: Tensor, eps: float = CAM_EPS) -> Tensor:
    """Per image and class ``(cam - min) / (max - min + eps)``.

    Computed as the official code does: shift by the minimum, then divide by
    the maximum of the shifted map plus ``eps``.

    Args:
        cam (Tensor): (B, C, H, W) CAMs (already rectified).

    Returns:
        Tensor: (B, C, H, W) CAMs in [0, 1).
    """
    cam = cam - cam.amin(dim=(-2, -1), keepdim=True)
    return cam / (cam.amax(dim=(-2, -1), keepdim=True) + eps)


def multi_scale_cam(cam_fn: Callable[[Tensor], Tensor],
                    inputs: Tensor,
                    scales: Sequence[float] = (1.0, ),
                    flip: bool = True,
                    flip_merge: str = 'max',
                    scale_merge: str = 'sum',
                    normalize: bool = True,
                    align_corners: bool = False,
                    out_size: Optional[Tuple[int, int]] = None,
                    first_view: Optional[Tensor] = None) -> Tensor:
    """Multi-scale + flip CAMs, as ToCo's ``multi_scale_cam``.

    At each scale the input (and its horizontal flip) is resized
    (bilinear), ``cam_fn`` gives raw CAMs, which are resized back to the
    input size; the flipped view's CAM is un-flipped and merged with the
    view's (``flip_merge``), rectified (ReLU), and the scales are merged
    (``scale_merge``); finally each map is min-max normalised.

    Args:
        cam_fn (Callable): Maps (N, 3, h, w) images to (N, C, h', w') raw
            CAMs.
        inputs (Tensor): (B, 3, H, W) normalised images.
        scales (Sequence[float]): Input scales. Defaults to (1.0,).
        flip (bool): Add horizontally flipped views. Defaults to True.
        flip_merge (str): 'max' (ToCo) or 'sum' of a view and its flip.
        scale_merge (str): 'sum' (ToCo) or 'max' over scales.
        normalize (bool): Min-max normalise the result. Defaults to True.
        align_corners (bool): For the bilinear resizes. Defaults to False.
        out_size (tuple[int, int], optional): The grid every scale's CAM is
            resized to; defaults to the input size (H, W). RRM merges on
            the scale-1 CAM grid (the feature stride) instead.
        first_view (Tensor, optional): (B, C, h', w') raw CAMs of
            ``inputs`` itself at scale 1.0, already computed (from the
            training forward's features): reused, so ``cam_fn`` sees only
            the flipped view at that scale. Equal to recomputing them up to
            float rounding (a batch of B against one of 2B).

    Returns:
        Tensor: (B, C, H, W) CAMs (``out_size`` when given).
    """
    if flip_merge not in ('max', 'sum') or scale_merge not in ('max', 'sum'):
        raise ValueError('flip_merge and scale_merge must be "max" or "sum"')
    B, _, H, W = inputs.shape
    out_size = (H, W) if out_size is None else tuple(out_size)
    merged: Optional[Tensor] = None
    for scale in scales:
        x = inputs
        if scale != 1.0:
            size = (int(round(H * scale)), int(round(W * scale)))
            x = F.interpolate(
                inputs,
                size=size,
                mode='bilinear',
                align_corners=align_corners)
        if scale == 1.0 and first_view is not None:
            raw = torch.cat([first_view, cam_fn(x.flip(-1))]) if flip \
                else first_view
        else:
            raw = cam_fn(torch.cat([x, x.flip(-1)]) if flip else x)
        cam = F.interpolate(
            raw, size=out_size, mode='bilinear', align_corners=align_corners)
        if flip:
            view, flipped = cam[:B], cam[B:].flip(-1)
            cam = torch.maximum(view, flipped) if flip_merge == 'max' \
                else view + flipped
        cam = F.relu(cam)
        if merged is None:
            merged = cam
        elif scale_merge == 'sum':
            merged = merged + cam
        else:
            merged = torch.maximum(merged, cam)
    return normalize_cam(merged) if normalize else merged


def _per_image(value: Union[float, Tensor], ref: Tensor) -> Tensor:
    """A threshold as a (B, 1, 1) tensor broadcastable over (B, H, W)."""
    return torch.as_tensor(
        value, dtype=ref.dtype, device=ref.device).reshape(-1, 1, 1)


def cam_score_map(cam: Tensor, cls_label: Tensor,
                  bkg_score: Union[float, Tensor]) -> Tensor:
    """Background-plus-classes score stack of CAMs (ToCo's CAM labels).

    A constant background score ``bkg_score`` is placed in front of the CAMs
    of the present classes (absent classes score 0), so that
    ``argmax`` over channels equals :func:`cam_to_label` with
    ``bkg_thr=bkg_score`` (ties go to background).

    Args:
        cam (Tensor): (B, C, H, W) normalised CAMs.
        cls_label (Tensor): (B, C) multi-hot present classes.
        bkg_score (float | Tensor): Background score (per image if (B,)).

    Returns:
        Tensor: (B, C + 1, H, W) scores.
    """
    cam = cam * cls_label[:, :, None, None].to(cam.dtype)
    bkg = torch.ones_like(cam[:, :1]) * _per_image(bkg_score, cam)[:, None]
    return torch.cat([bkg, cam], dim=1)


def stack_cls_labels(data_samples: List) -> Tensor:
    """Stack ``gt_cls_label`` of data samples into a (B, C) tensor.

    Raises:
        KeyError: If a sample has no image-level labels.
    """
    labels = []
    for i, sample in enumerate(data_samples):
        if 'gt_cls_label' not in sample:
            raise KeyError(
                f'Data sample {i} ({sample.metainfo.get("img_path")}) has no '
                'gt_cls_label: use a WSSS dataset and PackWSSSInputs.')
        labels.append(sample.gt_cls_label.data)
    return torch.stack(labels)


def present_classes(source: str,
                    data_samples: Optional[List] = None,
                    cls_logits_fn: Optional[Callable[[], Tensor]] = None,
                    cls_thr: float = 0.5) -> Tensor:
    """(B, C) multi-hot of the classes whose CAMs enter a prediction.

    Args:
        source (str): 'gt': the samples' image-level labels (the papers'
            protocol for CAM pseudo labels on the training split); 'pred':
            the classifier's sigmoid scores above ``cls_thr``, and always
            the top-scoring class (every image of these datasets has one).
        data_samples (list, optional): Needed for 'gt'.
        cls_logits_fn (Callable, optional): Returns (B, C) classification
            logits; needed (and only called) for 'pred'.
        cls_thr (float): Presence threshold for 'pred'. Defaults to 0.5.

    Returns:
        Tensor: (B, C) float multi-hot.
    """
    if source == 'gt':
        if data_samples is None:
            raise ValueError("cls_source='gt' needs data samples with "
                             'gt_cls_label')
        return stack_cls_labels(data_samples)
    if source not in CLS_SOURCES:
        raise ValueError(
            f'cls_source must be one of {CLS_SOURCES}, got {source!r}')
    probs = cls_logits_fn().sigmoid()
    present = (probs > cls_thr).float()
    present.scatter_(1, probs.argmax(dim=1, keepdim=True), 1.0)
    return present
