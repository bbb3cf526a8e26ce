# Copyright (c) OpenMMLab. All rights reserved.
"""Dilated 8-neighbourhoods with replicate padding.

The shared machinery of pixel-adaptive refinement (PAR, ToCo / DuPL / FSR,
official_code_notes 1.7) and PAMR (1Stage, official_code_notes 4): at each
dilation ``d`` of a list, the 8 positions of the 3x3 window ``{-d, 0, d}^2``
minus the centre, in row-major order::

    0 1 2
    3 . 4
    5 6 7

so position ``k`` of dilation ``dilations[i]`` is stacked at index
``8 * i + k``. With ``include_center=True`` the full 9-position window is used
per dilation (centre at index 4 of each group, hence repeated once per
dilation), as PAMR's local standard deviation is taken over "the 9-position
window of all dilations".

Borders use replicate padding, i.e. a neighbour outside the image is the
nearest border pixel (index clamping), also when the dilation exceeds the
image size.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# Row-major 3x3 window offsets (dy, dx) in units of the dilation.
_WINDOW = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
_NEIGHBORS = [o for o in _WINDOW if o != (0, 0)]


def _check_dilations(dilations: Sequence[int]) -> Tuple[int, ...]:
    dilations = tuple(int(d) for d in dilations)
    if len(dilations) == 0 or any(d < 1 for d in dilations):
        raise ValueError(
            f'dilations must be a non-empty list of positive ints, got '
            f'{dilations}')
    return dilations


def _window(include_center: bool) -> List[Tuple[int, int]]:
    return _WINDOW if include_center else _NEIGHBORS


def num_neighbors(dilations: Sequence[int],
                  include_center: bool = False) -> int:
    """Number of stacked positions: ``8 * K`` (``9 * K`` with the centre)."""
    return len(_check_dilations(dilations)) * len(_window(include_center))


def neighbor_offsets(dilations: Sequence[int],
                     include_center: bool = False) -> List[Tuple[int, int]]:
    """Pixel offsets ``(dy, dx)`` of the stacked positions, in stack order.

    Args:
        dilations (Sequence[int]): The dilations, e.g. (1, 2, 4, 8, 12, 24).
        include_center (bool): 9 positions per dilation instead of 8.

    Returns:
        list[tuple[int, int]]: ``num_neighbors`` offsets, dilation-major.
    """
    return [(dy * d, dx * d) for d in _check_dilations(dilations)
            for dy, dx in _window(include_center)]


def neighbor_distances(dilations: Sequence[int],
                       include_center: bool = False,
                       dtype: torch.dtype = torch.float32,
                       device=None) -> Tensor:
    """Euclidean lengths of the offsets: ``d`` (axis), ``d * sqrt(2)``
    (diagonal), 0 (centre).

    Args:
        dilations (Sequence[int]): The dilations.
        include_center (bool): Include the centre (distance 0).
        dtype (torch.dtype): Defaults to float32.
        device: Defaults to the CPU.

    Returns:
        Tensor: (N,) distances in stack order.
    """
    dist = [
        math.hypot(dy, dx)
        for dy, dx in neighbor_offsets(dilations, include_center)
    ]
    return torch.tensor(dist, dtype=dtype, device=device)


def _shifted_views(x: Tensor, dilations: Sequence[int], include_center: bool):
    """Yield the (B, C, H, W) neighbour views of ``x`` in stack order.

    One replicate pad per dilation, then each neighbour is a slice of the
    padded tensor (a view, no copy).
    """
    if x.dim() != 4:
        raise ValueError(f'expected a (B, C, H, W) tensor, got {x.shape}')
    H, W = x.shape[-2:]
    for d in _check_dilations(dilations):
        padded = F.pad(x, [d, d, d, d], mode='replicate')
        for dy, dx in _window(include_center):
            top, left = d + dy * d, d + dx * d
            yield padded[..., top:top + H, left:left + W]


def get_dilated_neighbors(x: Tensor,
                          dilations: Sequence[int],
                          include_center: bool = False) -> Tensor:
    """Stack the dilated neighbours of every pixel.

    Args:
        x (Tensor): (B, C, H, W) input.
        dilations (Sequence[int]): K dilations.
        include_center (bool): 9 positions per dilation (centre included)
            instead of 8. Defaults to False.

    Returns:
        Tensor: (B, C, N, H, W) with ``N = 8 * K`` (``9 * K``):
        ``out[b, c, n, i, j] = x[b, c, clamp(i + dy_n), clamp(j + dx_n)]``
        with ``(dy_n, dx_n) = neighbor_offsets(dilations)[n]``.
    """
    return torch.stack(
        list(_shifted_views(x, dilations, include_center)), dim=2)


def dilated_neighbor_sum(x: Tensor,
                         weights: Tensor,
                         dilations: Sequence[int],
                         include_center: bool = False) -> Tensor:
    """``sum_n weights[:, :, n] * neighbor_n(x)`` without the (B, C, N, H, W)
    stack.

    Equal to ``(get_dilated_neighbors(x, dilations) * weights).sum(2)``; the
    propagation step of PAR and PAMR. Accumulating one neighbour at a time
    keeps the peak memory at a few (B, C, H, W) maps instead of ``N`` of them
    (N = 48 for the default dilations), which matters when it runs ten times
    per training iteration.

    Args:
        x (Tensor): (B, C, H, W) maps to propagate.
        weights (Tensor): (B, 1 or C, N, H, W) per-neighbour weights.
        dilations (Sequence[int]): K dilations (N = 8 * K, or 9 * K).
        include_center (bool): Whether ``weights`` covers the centre too.

    Returns:
        Tensor: (B, C, H, W) weighted sums.
    """
    n = num_neighbors(dilations, include_center)
    if weights.dim() != 5 or weights.shape[2] != n:
        raise ValueError(f'weights must be (B, 1|C, {n}, H, W), got '
                         f'{tuple(weights.shape)}')
    out = None
    for k, view in enumerate(_shifted_views(x, dilations, include_center)):
        term = weights[:, :, k] * view
        # Out-of-place on the first term only: later in-place adds do not
        # touch anything autograd saved, so this also works with grad.
        out = term if out is None else out.add_(term)
    return out
