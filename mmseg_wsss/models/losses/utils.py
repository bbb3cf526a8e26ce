# Copyright (c) OpenMMLab. All rights reserved.
"""Shared helpers of the WSSS losses."""
from torch import Tensor


def masked_mean(value: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``value`` over ``mask``; an empty mask gives 0.

    The official ToCo code takes ``F.cross_entropy`` means over each pixel
    set, which is NaN for an empty set (ToCo issues #1/#3/#8/#26); DuPL
    divides by ``count + 1e-6``, which is not exactly the mean. Clamping the
    count at 1 gives the exact mean when the set is non-empty and 0 (a zero
    sum, still in the graph) when it is empty.

    Args:
        value (Tensor): Per-element values, e.g. (B, H, W) cross-entropy.
        mask (Tensor): Bool or 0/1 mask broadcastable to ``value``.

    Returns:
        Tensor: Scalar.
    """
    mask = mask.to(value.dtype)
    return (value * mask).sum() / mask.sum().clamp(min=1)
