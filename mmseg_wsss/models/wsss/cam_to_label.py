# Copyright (c) OpenMMLab. All rights reserved.
"""CAM (or mask) to pseudo label: the one home of every thresholding rule.

- :func:`cam_to_label`: ToCo's ``cam_to_label`` (evaluation threshold, or
  training low/high thresholds with an ignore band);
- :func:`ptc_label_from_cam`: the token-level label of PTC;
- :func:`refine_cams_with_bkg`: PAR-refined labels with two background
  constants (ToCo, DuPL with per-image thresholds);
- :func:`masks_to_pseudo_label`: 1Stage's relative thresholds;
- :func:`mask_outside_box`: the padded crop's invalid region as ignore.

Conventions as in :mod:`.cam`: ``C`` counts foreground classes; labels use
0 = background, class ids ``k + 1`` and ``IGNORE_INDEX`` (255).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..utils.resize import resize
from .cam import IGNORE_INDEX, _per_image, cam_score_map
from .par import PAR


def cam_to_label(cam: Tensor,
                 cls_label: Tensor,
                 bkg_thr: Optional[Union[float, Tensor]] = None,
                 low_thr: Optional[Union[float, Tensor]] = None,
                 high_thr: Optional[Union[float, Tensor]] = None,
                 img_box: Optional[Sequence[Sequence[int]]] = None,
                 ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Normalised CAMs to a label map (ToCo's ``cam_to_label``).

    CAMs of absent classes are zeroed, each pixel takes its strongest class.
    Evaluation (``bkg_thr``): background where that value ``<= bkg_thr``.
    Training (``low_thr`` and ``high_thr``): foreground where the value is
    ``> high_thr``, background where ``<= low_thr``, ignore in between.
    Pixels outside the valid box of a padded crop are ignore.

    Args:
        cam (Tensor): (B, C, H, W) normalised foreground CAMs.
        cls_label (Tensor): (B, C) multi-hot image labels.
        bkg_thr (float | Tensor, optional): Background threshold; a (B,)
            tensor gives one per image.
        low_thr (float | Tensor, optional): Background at or below this.
        high_thr (float | Tensor, optional): Foreground above this.
        img_box (Sequence, optional): Per image ``[h0, h1, w0, w1]``.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: (B, H, W) int64 label map (0 bg, 1..C fg, ignore_index).
    """
    train_mode = low_thr is not None or high_thr is not None
    if (bkg_thr is not None) == train_mode or (
            train_mode and (low_thr is None or high_thr is None)):
        raise ValueError('Give either bkg_thr (evaluation) or both low_thr '
                         'and high_thr (training).')
    cam = cam * cls_label[:, :, None, None].to(cam.dtype)
    value, idx = cam.max(dim=1)
    label = idx + 1
    if bkg_thr is not None:
        label[value <= _per_image(bkg_thr, value)] = 0
    else:
        # Order as in the code: ignore up to `high`, then background up to
        # `low` (so low > high would make everything background).
        label[value <= _per_image(high_thr, value)] = ignore_index
        label[value <= _per_image(low_thr, value)] = 0
    if img_box is not None:
        label = mask_outside_box(label, img_box, ignore_index)
    return label


def mask_outside_box(label: Tensor,
                     img_box: Sequence[Sequence[int]],
                     ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Set the pixels outside each image's valid box to ``ignore_index``.

    Args:
        label (Tensor): (B, H, W) label maps.
        img_box (Sequence): Per image ``[h0, h1, w0, w1]`` (None: no box).

    Returns:
        Tensor: (B, H, W) label maps (a new tensor).
    """
    out = torch.full_like(label, ignore_index)
    for i, box in enumerate(img_box):
        if box is None:
            out[i] = label[i]
            continue
        h0, h1, w0, w1 = (int(v) for v in box)
        out[i, h0:h1, w0:w1] = label[i, h0:h1, w0:w1]
    return out


def _scale_box(box: Optional[Sequence[int]], src_size: Tuple[int, int],
               dst_size: Tuple[int, int]) -> Optional[Tuple[int, ...]]:
    """Map a pixel box ``[h0, h1, w0, w1]`` onto a coarser grid.

    A grid cell is kept only when it lies entirely inside the box (start
    rounded up, end rounded down, in exact integer arithmetic), so that no
    token that straddles the zero padding of a crop gets a pseudo label.
    """
    if box is None:
        return None
    h0, h1, w0, w1 = (int(v) for v in box)
    (H, W), (h, w) = src_size, dst_size
    # ceil(a * n / N) == -((-a * n) // N); floor(b * n / N) == (b * n) // N
    return (-((-h0 * h) // H), (h1 * h) // H, -((-w0 * w) // W), (w1 * w) // W)


@torch.no_grad()
def ptc_label_from_cam(cam: Tensor,
                       cls_label: Tensor,
                       token_size: Tuple[int, int],
                       low_thr: Union[float, Tensor],
                       high_thr: Union[float, Tensor],
                       img_box: Optional[Sequence[Sequence[int]]] = None,
                       ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Token-level pseudo label for :class:`PTCLoss` from normalised CAMs.

    As ToCo (notes 1.5 step 1): the CAM is first resized to the token grid
    (bilinear, ``align_corners=False``) and then thresholded with
    :func:`cam_to_label` (fg ``> high_thr``, bg ``<= low_thr``, ignore in
    between). Computed without gradient (the official code detaches the CAM).

    ``img_box`` is given in pixels of the CAM (input) resolution. The official
    code passes these pixel coordinates unchanged to the token-grid label
    (a unit mismatch). Here the box is scaled to the token grid and only the
    tokens entirely inside the valid region keep their label; all others are
    ``ignore_index``.

    Args:
        cam (Tensor): (B, C, H, W) normalised foreground CAMs.
        cls_label (Tensor): (B, C) multi-hot image labels.
        token_size (tuple[int, int]): Token grid ``(h, w)``.
        low_thr (float | Tensor): Background at or below this (a (B,) tensor
            gives one per image).
        high_thr (float | Tensor): Foreground above this (float or (B,),
            e.g. DuPL's per-image dynamic threshold).
        img_box (Sequence, optional): Per image ``[h0, h1, w0, w1]`` valid
            region in CAM pixels, or None entries for no box.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: (B, h, w) int64 labels (0 bg, 1..C fg, ``ignore_index``).
    """
    token_size = tuple(int(s) for s in token_size)
    src_size = tuple(cam.shape[-2:])
    if src_size != token_size:
        cam = resize(cam.detach(), token_size)
    if img_box is not None:
        img_box = [_scale_box(box, src_size, token_size) for box in img_box]
    return cam_to_label(
        cam.detach(),
        cls_label,
        low_thr=low_thr,
        high_thr=high_thr,
        img_box=img_box,
        ignore_index=ignore_index)


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
    small_imgs = resize(imgs, size)
    # The CAMs (usually at the crop size) are brought to PAR's resolution
    # before the softmax, with the same resize as the image; a bilinear
    # resize leaves the constant background channels unchanged, and PAR's
    # own (align_corners=True) resize of the masks becomes a no-op.
    small_cams = resize(cams, size)

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
    refined = resize(refined, (H, W))
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


def masks_to_pseudo_label(masks: Tensor,
                          fg_ratio: float = 0.6,
                          bg_ratio: float = 0.7,
                          min_thr: float = 0.2,
                          ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Relative-threshold pseudo label of background-first masks.

    Per image and class, threshold ``max(min_thr, ratio * max_pixel(m_c))``
    with ``ratio = bg_ratio`` for background (channel 0) and ``fg_ratio``
    for the others; a pixel is positive for a class when its mask value is
    strictly above the threshold. Pixels positive for more than one class
    (conflicts) or for none (empty) are ``ignore_index``. Zero the channels
    of absent classes first (their maximum 0 gives the floor ``min_thr``, so
    they are never positive).

    Args:
        masks (Tensor): (B, C, H, W) masks, background first.
        fg_ratio (float): Foreground ratio of the class maximum. Defaults to
            0.6.
        bg_ratio (float): Background ratio. Defaults to 0.7.
        min_thr (float): Floor of every threshold. Defaults to 0.2.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: (B, H, W) int64 labels (class id or ``ignore_index``).
    """
    ratio = torch.full((masks.shape[1], ),
                       fg_ratio,
                       dtype=masks.dtype,
                       device=masks.device)
    ratio[0] = bg_ratio
    peak = masks.amax(dim=(-2, -1), keepdim=True)
    thr = (peak * ratio[:, None, None]).clamp(min=min_thr)
    positive = masks > thr
    label = positive.to(masks.dtype).argmax(dim=1)
    label[positive.sum(dim=1) != 1] = ignore_index
    return label
