# Copyright (c) OpenMMLab. All rights reserved.
"""Dense CRF energy regulariser (rloss) in pure PyTorch.

ToCo and FSR add the "regularised loss" of Tang et al. (ECCV 2018, rloss) to
the segmentation loss: the relaxed dense-CRF (Potts) energy of the soft
segmentation ``S`` under a fully connected bilateral affinity

.. math::

    W_{ij} = \\exp\\Big(-\\frac{|p_i - p_j|^2}{2\\sigma_{xy}^2}
                      - \\frac{|I_i - I_j|^2}{2\\sigma_{rgb}^2}\\Big),

over **all** pixel pairs ``(i, j)`` of the (downscaled) image, the pixel
itself included (``W_ii = 1``, as the permutohedral-lattice filter of the
original includes the centre pixel). The original filters with a compiled
CPU permutohedral lattice (a SWIG extension that users routinely fail to
build); this module needs nothing but PyTorch and runs on any device.

Two ways of computing ``W S`` (for ``K`` channels of ``N`` pixels):

* ``'exact'``: the dense sum, in row blocks of at most ``_BLOCK_NUMEL``
  kernel entries (1 MB of float32) at a time. O(N^2 K) time, O(N K) memory
  beyond the block. The reference, and the right choice for small images.
* ``'grid'``: a 5-D (y, x, and the three colour axes) bilateral grid,
  splat - blur - slice: O(N K) for splatting and slicing plus a blur whose
  cost depends on the size of the grid (image extent / sigma_xy, colour
  range / sigma_rgb), not on N^2. Design choices, all measured against
  ``'exact'`` (relative L2 error of ``W S``):

  - quadratic B-spline splatting/slicing (3 vertices per axis) instead of
    multilinear (2 per axis): the error of a grid filter is dominated by
    aliasing of the interpolation kernel, which decays one order faster for
    the quadratic spline. Multilinear at spacing sigma/2 in all five axes
    gives 1.5-2.4 % on 112 x 112 images, too close to a 2 % budget; the
    quadratic spline at sigma_xy/2 and 0.6 sigma_rgb gives 0.2-0.5 %;
  - the blur between grid vertices is the exact sampled Gaussian along each
    axis (a small dense ``G x G`` matrix per axis, no truncation), with the
    standard deviation reduced to ``sqrt(sigma^2 - 2 var(spline))`` and the
    amplitude raised by ``sigma / sigma'`` so that splat + blur + slice
    reproduces both the variance and the peak value of the target Gaussian;
  - the colours are rotated onto their principal axes before gridding. A
    rotation leaves ``|I_i - I_j|`` unchanged (so the kernel is the same), and
    natural-image colours spread along the luminance axis: the colour
    bounding box, hence the grid, shrinks about 3x.

  The grid has ``G_c1 G_c2 G_c3 G_y G_x`` vertices (e.g. 13 x 22 x 51 x
  12 x 12 = 2.1M for a 224 x 224 photograph at the default sigmas), each
  holding the K channels; channels are processed in groups so that the grid
  stays within ``_GRID_BLOCK_NUMEL`` floats whenever possible.
* ``'auto'``: ``'exact'`` up to ``EXACT_MAX_PIXELS`` pixels (and when the
  grid would be unreasonably large), ``'grid'`` otherwise.

The loss and its gradient follow the original rloss forward/backward (see
:class:`DenseEnergyLossFunction`).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.registry import MODELS

# 'auto' switches from the exact dense sum to the grid above this many
# (downscaled) pixels: up to 64 x 64 (16.8M kernel entries) the exact sum is
# cheap and free of approximation; beyond it, it grows as N^2.
EXACT_MAX_PIXELS = 64 * 64
# Grid spacing in units of the kernel standard deviations (see module doc).
GRID_XY_STEP = 0.5
GRID_RGB_STEP = 0.6
# 'auto' does not build a grid with more vertices than this (e.g. for a tiny
# sigma_rgb) and falls back to the exact sum.
GRID_MAX_VERTICES = 2**26
# Kernel entries of one block of the exact sum (1 MB of float32): the block
# is built, exponentiated and multiplied while it is in the L2 cache.
_BLOCK_NUMEL = 2**18
# Lower bound of the exact kernel's exponents (module doc of the exact sum).
_MIN_EXPONENT = -80.
# Float32 elements of the grid processed at once (256 MB). Larger than
# _BLOCK_NUMEL on purpose: the grid rows hold the channels, and the per-row
# operations are several times slower per element when a group has only a
# handful of channels; 256 MB keeps the 21 VOC classes of a 224 x 224
# (downscaled) image in one group.
_GRID_BLOCK_NUMEL = 2**26
_METHODS = ('auto', 'exact', 'grid')


def _pixel_positions(height: int, width: int, device: torch.device) -> Tensor:
    """(N, 2) float32 (y, x) pixel coordinates, row-major."""
    ys = torch.arange(height, device=device, dtype=torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([yy.reshape(-1), xx.reshape(-1)], dim=1)


def _exponent_factors(feats: Tensor) -> Tuple[Tensor, Tensor]:
    """Factors ``A, B`` with ``A_i . B_j = -|f_i - f_j|^2 / 2``.

    ``A_i = [f_i, -|f_i|^2 / 2, 1]`` and ``B_j = [f_j, 1, -|f_j|^2 / 2]``:
    one matrix product with an inner size of ``D + 2`` gives a block of
    exponents, far cheaper than explicit differences. The features are
    centred first, which bounds ``|f|^2`` and so the cancellation of the
    expansion (float32: an exponent error of about ``1e-7 max |f|^2``, a
    relative error of ``W`` of a few 1e-5 at the default sigmas).
    """
    feats = feats - feats.mean(dim=0, keepdim=True)
    half_sq = feats.square().sum(dim=1, keepdim=True).mul_(-0.5)
    ones = torch.ones_like(half_sq)
    return (torch.cat([feats, half_sq, ones],
                      dim=1), torch.cat([feats, ones, half_sq], dim=1))


def dense_gaussian_filter_exact(img: Tensor,
                                src: Tensor,
                                sigma_rgb: float,
                                sigma_xy: float,
                                block_numel: int = _BLOCK_NUMEL) -> Tensor:
    """Exact dense bilateral filtering ``out_i = sum_j W_ij src_j``.

    ``W`` is the Gaussian affinity of the module doc over all pixel pairs,
    diagonal (``W_ii = 1``) included. The kernel is built in row blocks of at
    most ``block_numel`` entries (small enough to stay in cache). The
    exponents come from one small matrix product (:func:`_exponent_factors`)
    computed in float32 on the CPU and in float64 elsewhere, always outside
    autocast (TF32 or half-precision products would cancel catastrophically).
    Exponents are clamped at ``_MIN_EXPONENT``: a kernel entry below
    ``exp(-80) = 1.8e-35`` is that value, not a float32 denormal, whose
    ``exp`` and products are an order of magnitude slower on CPUs.

    Args:
        img (Tensor): (3, H, W) image, 0-255.
        src (Tensor): (K, H, W) signal to filter.
        sigma_rgb (float): colour standard deviation (image units).
        sigma_xy (float): spatial standard deviation (pixels).
        block_numel (int): kernel entries per block.

    Returns:
        Tensor: (K, H, W) float32 filtered signal.
    """
    _, height, width = img.shape
    num_ch = src.shape[0]
    num_px = height * width
    exp_dtype = torch.float32 if img.device.type == 'cpu' else torch.float64
    with torch.autocast(img.device.type, enabled=False):
        feats = torch.cat([
            _pixel_positions(height, width, img.device) / sigma_xy,
            img.float().reshape(3, -1).t() / sigma_rgb
        ],
                          dim=1).to(exp_dtype)
        left, right = _exponent_factors(feats)
        right_t = right.t().contiguous()
        flat = src.float().reshape(num_ch, num_px).t()
        out = torch.empty_like(flat)
        rows = max(1, block_numel // num_px)
        for start in range(0, num_px, rows):
            kernel = torch.mm(left[start:start + rows], right_t)
            kernel = kernel.clamp_(_MIN_EXPONENT, 0.).exp_().float()
            out[start:start + rows] = kernel @ flat
    return out.t().reshape(num_ch, height, width)


def _quadratic_bspline(coords: Tensor) -> Tuple[Tensor, List[Tensor]]:
    """Quadratic B-spline interpolation weights on the integer grid.

    A point at grid coordinate ``u`` touches vertices ``base + (0, 1, 2)``
    with ``base = round(u) - 1``; the weights sum to one.

    Args:
        coords (Tensor): (..., N) grid coordinates.

    Returns:
        tuple: ``base`` (..., N) long, shifted so that its minimum along
        the last dim is 0, and the three (..., N) weight tensors.
    """
    nearest = torch.round(coords)
    frac = coords - nearest  # in [-0.5, 0.5]
    weights = [
        0.5 * (0.5 - frac).square(), 0.75 - frac.square(),
        0.5 * (0.5 + frac).square()
    ]
    base = nearest.long()
    base = base - base.min(dim=-1, keepdim=True)[0]
    return base, weights


def _vertex_kernel(size: int, step: float, sigma: float,
                   device: torch.device) -> Tensor:
    """(size, size) Gaussian between grid vertices along one axis.

    Splatting and slicing with the quadratic B-spline (variance
    ``step^2 / 4`` each) widen the kernel and lower its peak, so the vertex
    Gaussian uses ``sigma'^2 = sigma^2 - step^2 / 2`` and amplitude
    ``sigma / sigma'``: the effective kernel then has the variance and the
    peak of the target.
    """
    var = sigma * sigma - 0.5 * step * step
    pos = torch.arange(size, device=device, dtype=torch.float32) * step
    diff = pos[:, None] - pos[None, :]
    return (sigma / math.sqrt(var)) * torch.exp(-diff.square() / (2 * var))


def _grid_layout(img: Tensor, sigma_rgb: float, sigma_xy: float,
                 xy_step: float, rgb_step: float):
    """Grid geometry: per-pixel vertex indices/weights and axis sizes.

    Args:
        img (Tensor): (3, H, W) image.

    Returns:
        tuple: ``col_idx`` (27, N) long and ``col_w`` (27, N) colour-vertex
        indices/weights, ``pos_idx`` (9, N) and ``pos_w`` (9, N) spatial ones,
        ``sizes`` (G_c1, G_c2, G_c3, G_y, G_x) and ``steps`` (the spacing of
        each axis in image units).
    """
    _, height, width = img.shape
    device = img.device
    colours = img.float().reshape(3, -1)
    colours = colours - colours.mean(dim=1, keepdim=True)
    # Principal colour axes (a rotation: distances are unchanged). eigh of a
    # 3x3 in float64 on the CPU: exact enough and no device solver needed.
    cov = (colours @ colours.t()).double().cpu()
    _, axes = torch.linalg.eigh(cov)
    colours = axes.t().to(device=device, dtype=torch.float32) @ colours

    c_step = rgb_step * sigma_rgb
    p_step = xy_step * sigma_xy
    c_base, c_w = _quadratic_bspline(colours / c_step)  # (3, N)
    c_sizes = [int(v) + 3 for v in c_base.max(dim=1)[0].tolist()]
    col_idx, col_w = [], []
    for d0 in range(3):
        for d1 in range(3):
            for d2 in range(3):
                plane = (c_base[0] + d0) * c_sizes[1] + c_base[1] + d1
                col_idx.append(plane * c_sizes[2] + c_base[2] + d2)
                col_w.append(c_w[d0][0] * c_w[d1][1] * c_w[d2][2])

    y_base, y_w = _quadratic_bspline(
        torch.arange(height, device=device, dtype=torch.float32) / p_step)
    x_base, x_w = _quadratic_bspline(
        torch.arange(width, device=device, dtype=torch.float32) / p_step)
    size_y, size_x = int(y_base.max()) + 3, int(x_base.max()) + 3
    pos_idx, pos_w = [], []
    for dy in range(3):
        for dx in range(3):
            pos_idx.append(((y_base + dy)[:, None] * size_x +
                            (x_base + dx)[None, :]).reshape(-1))
            pos_w.append((y_w[dy][:, None] * x_w[dx][None, :]).reshape(-1))
    sizes = (*c_sizes, size_y, size_x)
    steps = (c_step, ) * 3 + (p_step, ) * 2
    return (torch.stack(col_idx), torch.stack(col_w), torch.stack(pos_idx),
            torch.stack(pos_w), sizes, steps)


def dense_gaussian_filter_grid(img: Tensor,
                               src: Tensor,
                               sigma_rgb: float,
                               sigma_xy: float,
                               xy_step: float = GRID_XY_STEP,
                               rgb_step: float = GRID_RGB_STEP,
                               block_numel: int = _GRID_BLOCK_NUMEL,
                               layout: Optional[tuple] = None) -> Tensor:
    """Approximate dense bilateral filtering on a 5-D bilateral grid.

    Splat ``src`` onto a regular (colour x 3, y, x) grid with quadratic
    B-spline weights, blur the grid with the separable sampled Gaussian
    (:func:`_vertex_kernel`, one small dense matrix per axis) and slice it
    back with the same weights. About 0.2-0.5 % relative L2 error against
    :func:`dense_gaussian_filter_exact` with the default spacing (see the
    module doc).

    Args:
        img (Tensor): (3, H, W) image, 0-255.
        src (Tensor): (K, H, W) signal to filter.
        sigma_rgb (float): colour standard deviation (image units).
        sigma_xy (float): spatial standard deviation (pixels).
        xy_step (float): spatial grid spacing in units of ``sigma_xy``.
        rgb_step (float): colour grid spacing in units of ``sigma_rgb``.
        block_numel (int): target float32 elements of the grid processed at
            once (channels are processed in groups to stay below it).
        layout (tuple, optional): the :func:`_grid_layout` of ``img`` with
            the same sigmas and steps, when already computed.

    Returns:
        Tensor: (K, H, W) float32 filtered signal.
    """
    for name, step in (('xy_step', xy_step), ('rgb_step', rgb_step)):
        # sigma'^2 = sigma^2 (1 - step^2 / 2) must stay positive.
        if not 0 < step < 1.4:
            raise ValueError(f'{name} must be in (0, 1.4), got {step}')
    _, height, width = img.shape
    num_ch = src.shape[0]
    num_px = height * width
    if layout is None:
        layout = _grid_layout(img, sigma_rgb, sigma_xy, xy_step, rgb_step)
    col_idx, col_w, pos_idx, pos_w, sizes, steps = layout
    sigmas = (sigma_rgb, ) * 3 + (sigma_xy, ) * 2
    kernels = [
        _vertex_kernel(size, step, sigma, img.device)
        for size, step, sigma in zip(sizes, steps, sigmas)
    ]
    num_pos = sizes[3] * sizes[4]
    num_vert = math.prod(sizes)
    flat = src.float().reshape(num_ch, num_px).t()  # (N, K)
    out = torch.empty_like(flat)
    group = min(num_ch, max(1, block_numel // num_vert))
    for c0 in range(0, num_ch, group):
        chunk = flat[:, c0:c0 + group]
        n_ch = chunk.shape[1]
        grid = flat.new_zeros(num_vert, n_ch)
        # Splat: one index_add per colour vertex offset, over all pixels and
        # the 9 spatial offsets at once.
        for idx_c, w_c in zip(col_idx, col_w):
            index = (idx_c[None, :] * num_pos + pos_idx).reshape(-1)
            weight = (w_c[None, :] * pos_w)[..., None]
            grid.index_add_(0, index, (chunk[None] * weight).reshape(-1, n_ch))
        # Blur: axis by axis, viewing the grid as (before, G_a, after) so
        # that the matmul broadcasts without any permute/copy.
        before = 1
        for axis, kernel in enumerate(kernels):
            after = num_vert // (before * sizes[axis]) * n_ch
            grid = torch.matmul(kernel, grid.view(before, sizes[axis], after))
            before *= sizes[axis]
        grid = grid.view(num_vert, n_ch)
        # Slice with the splatting weights (fused multiply-adds: no
        # (9, N, K) product temporary).
        res = flat.new_zeros(num_px, n_ch)
        for idx_c, w_c in zip(col_idx, col_w):
            index = (idx_c[None, :] * num_pos + pos_idx).reshape(-1)
            vals = grid.index_select(0, index).view(9, num_px, n_ch)
            weight = w_c[None, :] * pos_w
            for p in range(9):
                res.addcmul_(vals[p], weight[p][:, None])
        out[:, c0:c0 + n_ch] = res
    return out.t().reshape(num_ch, height, width)


def dense_gaussian_filter(img: Tensor,
                          src: Tensor,
                          sigma_rgb: float,
                          sigma_xy: float,
                          method: str = 'auto') -> Tensor:
    """Batched dense bilateral filtering ``W S`` (module doc).

    Args:
        img (Tensor): (B, 3, H, W) image, 0-255.
        src (Tensor): (B, K, H, W) signal.
        sigma_rgb (float): colour standard deviation.
        sigma_xy (float): spatial standard deviation (pixels of ``img``).
        method (str): 'auto', 'exact' or 'grid'.

    Returns:
        Tensor: (B, K, H, W) float32.
    """
    if method not in _METHODS:
        raise ValueError(f'method must be one of {_METHODS}, got {method!r}')
    if img.shape[0] != src.shape[0] or img.shape[2:] != src.shape[2:]:
        raise ValueError(f'img {tuple(img.shape)} and src '
                         f'{tuple(src.shape)} do not match')
    outs = []
    for image, signal in zip(img, src):
        use, layout = method, None
        if method == 'auto':
            use = 'exact'
            if image.shape[1] * image.shape[2] > EXACT_MAX_PIXELS:
                layout = _grid_layout(image, sigma_rgb, sigma_xy, GRID_XY_STEP,
                                      GRID_RGB_STEP)
                if math.prod(layout[4]) <= GRID_MAX_VERTICES:
                    use = 'grid'
        if use == 'exact':
            outs.append(
                dense_gaussian_filter_exact(image, signal, sigma_rgb,
                                            sigma_xy))
        else:
            outs.append(
                dense_gaussian_filter_grid(
                    image, signal, sigma_rgb, sigma_xy, layout=layout))
    return torch.stack(outs)


def energy_gate(seg: Tensor, roi: Tensor, unlabeled: Tensor) -> Tensor:
    """Gate of the rloss: where the energy acts.

    ``Gate = ROI - max_k S``, set to 1 where the pseudo label is unlabelled,
    negatives clamped to 0: the energy acts on unlabelled pixels and, inside
    the ROI, on labelled pixels in proportion to the prediction's
    uncertainty.

    Args:
        seg (Tensor): (B, K, H, W) soft segmentation.
        roi (Tensor): (B, H, W) 1 inside the valid region.
        unlabeled (Tensor): (B, H, W) bool, True where the label is 255.

    Returns:
        Tensor: (B, H, W) gate (no gradient).
    """
    with torch.no_grad():
        gate = roi.float() - seg.float().max(dim=1)[0]
        gate = torch.where(unlabeled, torch.ones_like(gate), gate)
        return gate.clamp_(min=0)


class DenseEnergyLossFunction(torch.autograd.Function):
    """rloss energy with the original custom backward.

    Forward (per the original rloss, on already downscaled inputs)::

        Gate = clamp(ROI - max_k S; 1 where unlabelled; min=0)
        S    = S * ROI
        AS   = (W S) * Gate
        loss = -sum(S * AS) / N              # N = batch size

    Backward: ``dL/dS = -2 * AS / N * ROI`` (times the incoming gradient),
    with Gate a constant and ``W S`` reused from the forward (no autograd
    through the filter). This is the original's choice, and it is the exact
    gradient of the forward with Gate frozen only when Gate is uniform (e.g.
    everything unlabelled): in general that gradient would be
    ``-(Gate * W S' + W (Gate * S')) / N * ROI`` with ``S' = S * ROI``.
    The forward runs in float32 whatever the input dtype; the gradient is
    returned in the dtype of ``seg``.
    """

    @staticmethod
    def forward(ctx, img: Tensor, seg: Tensor, roi: Tensor, unlabeled: Tensor,
                sigma_rgb: float, sigma_xy: float, method: str) -> Tensor:
        """
        Args:
            img (Tensor): (B, 3, H, W) image, 0-255.
            seg (Tensor): (B, K, H, W) soft segmentation.
            roi (Tensor): (B, H, W) ROI mask (1 inside).
            unlabeled (Tensor): (B, H, W) bool, label == 255.
            sigma_rgb (float): colour standard deviation.
            sigma_xy (float): spatial standard deviation (pixels of img).
            method (str): filtering method, see :func:`dense_gaussian_filter`.

        Returns:
            Tensor: scalar loss (float32).
        """
        num = seg.shape[0]
        seg32 = seg.float()
        roi32 = roi.float()[:, None]
        gate = energy_gate(seg32, roi, unlabeled)[:, None]
        masked = seg32 * roi32
        weighted = dense_gaussian_filter(img, masked, sigma_rgb, sigma_xy,
                                         method) * gate
        ctx.save_for_backward(weighted, roi32)
        ctx.num = num
        ctx.seg_dtype = seg.dtype
        return -(masked * weighted).sum() / num

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        weighted, roi32 = ctx.saved_tensors
        grad_seg = (-2.0 / ctx.num) * grad_output * weighted * roi32
        return (None, grad_seg.to(ctx.seg_dtype), None, None, None, None, None)


def dense_energy_loss(img: Tensor,
                      seg: Tensor,
                      roi: Tensor,
                      unlabeled: Tensor,
                      sigma_rgb: float,
                      sigma_xy: float,
                      method: str = 'auto') -> Tensor:
    """Functional form of :class:`DenseEnergyLossFunction` (no rescaling,
    no weights)."""
    return DenseEnergyLossFunction.apply(img, seg, roi, unlabeled, sigma_rgb,
                                         sigma_xy, method)


@MODELS.register_module()
class DenseEnergyLoss(nn.Module):
    """Dense CRF energy regulariser (rloss) of ToCo / FSR, pure PyTorch.

    ``loss = loss_weight * weight * (-sum(S * Gate * (W S)) / N)`` on inputs
    downscaled by ``scale_factor`` (image and ROI and label: nearest;
    segmentation: bilinear; ``sigma_xy`` scaled likewise), with the dense
    bilateral affinity ``W`` over all pixel pairs, diagonal included (module
    doc). The gradient w.r.t. the downscaled segmentation is the original's
    ``-2 * Gate * (W S) / N * ROI`` (times the weights), then flows back
    through the bilinear downscale to ``seg_probs``; Gate is a constant.
    The value is negative (the energy to minimise is ``-S^T W S``).

    Args:
        loss_weight (float): weight in the total loss (ToCo/FSR: 0.05).
        weight (float): rloss's own weight (1e-7 in the original; the raw
            energy sums over pixel pairs, hence the tiny value).
        sigma_rgb (float): colour standard deviation (0-255 units).
        sigma_xy (float): spatial standard deviation in input pixels.
        scale_factor (float): downscale before filtering.
        method (str): 'auto', 'exact' or 'grid' (module doc).
        loss_name (str): key of the loss in the loss dict.
    """

    def __init__(self,
                 loss_weight: float = 0.05,
                 weight: float = 1e-7,
                 sigma_rgb: float = 15.0,
                 sigma_xy: float = 100.0,
                 scale_factor: float = 0.5,
                 method: str = 'auto',
                 loss_name: str = 'loss_energy') -> None:
        super().__init__()
        if method not in _METHODS:
            raise ValueError(
                f'method must be one of {_METHODS}, got {method!r}')
        if scale_factor <= 0:
            raise ValueError(f'scale_factor must be > 0, got {scale_factor}')
        self.loss_weight = loss_weight
        self.weight = weight
        self.sigma_rgb = sigma_rgb
        self.sigma_xy = sigma_xy
        self.scale_factor = scale_factor
        self.method = method
        self._loss_name = loss_name

    def _downscale(self, img: Tensor, seg: Tensor, roi: Tensor,
                   label: Tensor) -> Sequence[Tensor]:
        """Downscale as the original: image/ROI/label nearest, seg
        bilinear."""
        img = img.float()
        roi = roi.float()
        label = label.float()
        if self.scale_factor == 1:
            return img, seg, roi, label
        scale = self.scale_factor
        img = F.interpolate(img, scale_factor=scale, mode='nearest')
        seg = F.interpolate(
            seg, scale_factor=scale, mode='bilinear', align_corners=False)
        roi = F.interpolate(
            roi[:, None], scale_factor=scale, mode='nearest')[:, 0]
        label = F.interpolate(
            label[:, None], scale_factor=scale, mode='nearest')[:, 0]
        return img, seg, roi, label

    def forward(self, img: Tensor, seg_probs: Tensor, roi: Tensor,
                label: Tensor) -> Tensor:
        """Compute the weighted energy.

        Args:
            img (Tensor): (B, 3, H, W) denormalised RGB image, 0-255.
            seg_probs (Tensor): (B, K, H, W) softmax of the segmentation.
            roi (Tensor): (B, H, W) 1 inside the valid (non-padded) box.
            label (Tensor): (B, H, W) pseudo label, 255 = unlabelled.

        Returns:
            Tensor: scalar loss.
        """
        size = tuple(img.shape[-2:])
        others = dict(seg_probs=seg_probs, roi=roi, label=label)
        for name, tensor in others.items():
            if tuple(tensor.shape[-2:]) != size:
                raise ValueError(f'{name} is {tuple(tensor.shape)}, the '
                                 f'image {tuple(img.shape)}: resize first')
        img, seg, roi, label = self._downscale(img, seg_probs, roi, label)
        energy = dense_energy_loss(img, seg, roi, label == 255, self.sigma_rgb,
                                   self.sigma_xy * self.scale_factor,
                                   self.method)
        return self.loss_weight * self.weight * energy

    @property
    def loss_name(self) -> str:
        """Key of the loss in the loss dict (mmseg convention)."""
        return self._loss_name
