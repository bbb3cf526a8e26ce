# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of the pure-PyTorch rloss (dense CRF energy regulariser)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmseg_wsss.models.losses.dense_energy_loss import (
    EXACT_MAX_PIXELS, DenseEnergyLoss, DenseEnergyLossFunction,
    dense_gaussian_filter, dense_gaussian_filter_exact,
    dense_gaussian_filter_grid, energy_gate)
from mmseg_wsss.registry import MODELS

SIGMA_RGB, SIGMA_XY = 15.0, 100.0


def _naive_affinity(img: torch.Tensor, sigma_rgb: float,
                    sigma_xy: float) -> torch.Tensor:
    """(N, N) float64 W by an explicit double loop over pixel pairs."""
    _, height, width = img.shape
    pix = [(y, x) for y in range(height) for x in range(width)]
    colour = img.double().reshape(3, -1).t()
    aff = torch.empty(len(pix), len(pix), dtype=torch.float64)
    for i, (yi, xi) in enumerate(pix):
        for j, (yj, xj) in enumerate(pix):
            d_xy = (yi - yj)**2 + (xi - xj)**2
            d_rgb = float(((colour[i] - colour[j])**2).sum())
            aff[i, j] = math.exp(-d_xy / (2 * sigma_xy**2) - d_rgb /
                                 (2 * sigma_rgb**2))
    return aff


def _naive_filter(img, src, sigma_rgb, sigma_xy):
    """(K, H, W) float64 W src from :func:`_naive_affinity`."""
    aff = _naive_affinity(img, sigma_rgb, sigma_xy)
    num_ch = src.shape[0]
    out = aff @ src.double().reshape(num_ch, -1).t()
    return out.t().reshape(src.shape)


def _realistic_image(size: int, seed: int) -> torch.Tensor:
    """(3, size, size) 0-255 image: a smooth colour gradient background,
    ellipses of other colours (each with its own shading: edges and smooth
    regions), a striped texture patch and Gaussian noise; also the (size,
    size) region map (0-2) that the segmentation follows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.empty((3, size, size))
    for c in range(3):
        gy, gx = rng.uniform(-0.5, 0.5, 2) * 224 / size
        img[c] = rng.uniform(80, 170) + gy * (yy - size / 2) + gx * (
            xx - size / 2)
    regions = np.zeros((size, size), np.int64)
    for k in range(6):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(size / 10, size / 3, 2)
        mask = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 < 1
        colour = rng.uniform(0, 255, 3)
        shade = rng.uniform(-0.6, 0.6, 3) * 224 / size
        for c in range(3):
            img[c][mask] = colour[c] + shade[c] * (xx[mask] - cx)
        regions[mask] = 1 + k % 2
    y0, x0 = rng.integers(0, size // 2, 2)
    patch = (slice(y0, y0 + size // 4), slice(x0, x0 + size // 4))
    img[:, patch[0], patch[1]] += 40 * np.sin(xx[patch] * 1.3)
    img += rng.normal(0, 6, img.shape)
    img = torch.from_numpy(np.clip(img, 0, 255)).float()
    return img, torch.from_numpy(regions)


def _realistic_seg(regions: torch.Tensor, num_classes: int,
                   seed: int) -> torch.Tensor:
    """(K, H, W) softmax of logits that follow ``regions`` with blurred
    boundaries and smooth noise (as a half-trained segmentation head)."""
    gen = torch.Generator().manual_seed(seed)
    size = regions.shape[-1]
    logits = 4.0 * F.one_hot(regions, num_classes).permute(2, 0, 1).float()
    logits = F.avg_pool2d(logits[None], 9, stride=1, padding=4)[0]
    noise = torch.randn(1, num_classes, size // 16, size // 16, generator=gen)
    logits = logits + 1.5 * F.interpolate(
        noise, size=(size, size), mode='bilinear', align_corners=False)[0]
    return logits.softmax(dim=0)


def _rel_l2(approx: torch.Tensor, ref: torch.Tensor) -> float:
    return float((approx.double() - ref.double()).norm() / ref.double().norm())


# --------------------------------------------------------------------------
# (1) exact filtering against the naive double loop
# --------------------------------------------------------------------------
@pytest.mark.parametrize('block_numel', [7, 2**24])
def test_exact_filter_matches_naive_double_loop(block_numel):
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(3, 6, 5, generator=gen) * 255
    src = torch.rand(3, 6, 5, generator=gen)
    # Small sigmas so that W is far from constant.
    out = dense_gaussian_filter_exact(
        img, src, sigma_rgb=40.0, sigma_xy=2.0, block_numel=block_numel)
    ref = _naive_filter(img, src, 40.0, 2.0)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)


def test_exact_filter_matches_float64_differences_at_toy_size():
    # A 48 x 48 (toy crop at half scale) realistic image at the toy sigmas:
    # most entries of W underflow the exponent clamp, and the matrix-product
    # exponents must still agree with explicit float64 differences.
    img, regions = _realistic_image(48, seed=3)
    src = _realistic_seg(regions, 3, seed=3)
    feats = torch.cat([
        torch.stack(torch.meshgrid(
            torch.arange(48.), torch.arange(48.), indexing='ij')).reshape(
                2, -1).t().double() / 10.5,
        img.double().reshape(3, -1).t() / 15.0
    ], dim=1)
    aff = torch.exp(-0.5 * (feats[:, None] - feats[None]).square().sum(-1))
    ref = (aff @ src.double().reshape(3, -1).t()).t().reshape(src.shape)
    out = dense_gaussian_filter_exact(img, src, sigma_rgb=15.0, sigma_xy=10.5)
    assert _rel_l2(out, ref) < 1e-5
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-6)


def test_exact_filter_includes_the_diagonal():
    # Distinct colours and a tiny sigma_rgb: W is the identity (W_ii = 1).
    img = torch.arange(90, dtype=torch.float32).reshape(3, 6, 5) * 2.5
    src = torch.rand(2, 6, 5)
    out = dense_gaussian_filter_exact(img, src, sigma_rgb=0.1, sigma_xy=5.0)
    torch.testing.assert_close(out, src)
    # A constant image, huge sigmas: every W_ij = 1, so each output is the
    # sum over all pixels, the pixel itself included.
    flat = torch.full((3, 6, 5), 100.0)
    out = dense_gaussian_filter_exact(flat, src, sigma_rgb=1e6, sigma_xy=1e6)
    expected = src.sum(dim=(1, 2), keepdim=True).expand_as(src)
    torch.testing.assert_close(out, expected)


# --------------------------------------------------------------------------
# (2) grid filtering against the exact dense computation
# --------------------------------------------------------------------------
def test_grid_filter_error_at_half_scale_112():
    """224 x 224 input, scale 0.5 -> 112 x 112 (12,544 pixels, 157M kernel
    entries): the grid's relative L2 error of W S is at most 2 %."""
    img, regions = _realistic_image(224, seed=1)
    seg = _realistic_seg(regions, 3, seed=1)
    roi = torch.zeros(224, 224)
    roi[8:216, 20:224] = 1  # a crop box, as in ToCo's padded crops
    img_ds = F.interpolate(img[None], scale_factor=0.5)[0]
    seg_ds = F.interpolate(
        seg[None], scale_factor=0.5, mode='bilinear', align_corners=False)[0]
    roi_ds = F.interpolate(roi[None, None], scale_factor=0.5)[0]
    src = seg_ds * roi_ds
    assert img_ds.shape == (3, 112, 112)
    sigma_xy = SIGMA_XY * 0.5

    exact = dense_gaussian_filter_exact(img_ds, src, SIGMA_RGB, sigma_xy)
    grid = dense_gaussian_filter_grid(img_ds, src, SIGMA_RGB, sigma_xy)
    err = _rel_l2(grid, exact)
    assert err <= 0.02, f'grid error {err:.4f}'
    # Measured 0.2-0.5 % on such images (and on real photographs): keep a
    # margin below the 2 % budget so that a regression shows.
    assert err <= 0.01, f'grid error {err:.4f}'
    # 'auto' uses the grid at this size (and the exact sum below it).
    assert 112 * 112 > EXACT_MAX_PIXELS
    auto = dense_gaussian_filter(img_ds[None], src[None], SIGMA_RGB,
                                 sigma_xy)[0]
    torch.testing.assert_close(auto, grid)


@pytest.mark.parametrize('sigma_rgb,sigma_xy', [(15.0, 8.0), (30.0, 50.0)])
def test_grid_filter_other_sigmas(sigma_rgb, sigma_xy):
    # Non-square image, narrower kernels: the design is not tuned to one
    # configuration.
    img, regions = _realistic_image(64, seed=2)
    img = img[:, :, 8:56]
    src = _realistic_seg(regions, 3, seed=2)[:, :, 8:56]
    exact = dense_gaussian_filter_exact(img, src, sigma_rgb, sigma_xy)
    grid = dense_gaussian_filter_grid(img, src, sigma_rgb, sigma_xy)
    assert _rel_l2(grid, exact) <= 0.02


def test_grid_filter_channel_groups_and_bad_steps():
    img, regions = _realistic_image(32, seed=3)
    src = _realistic_seg(regions, 5, seed=3)
    whole = dense_gaussian_filter_grid(img, src, SIGMA_RGB, 20.0)
    # A tiny block forces one channel at a time: same result.
    grouped = dense_gaussian_filter_grid(
        img, src, SIGMA_RGB, 20.0, block_numel=1)
    torch.testing.assert_close(grouped, whole)
    with pytest.raises(ValueError, match='rgb_step'):
        dense_gaussian_filter_grid(img, src, SIGMA_RGB, 20.0, rgb_step=1.5)


# --------------------------------------------------------------------------
# (3) gradient: the original's custom backward, Gate constant
# --------------------------------------------------------------------------
def _small_batch(seed: int = 0, size=(8, 7), num_classes: int = 3):
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand(2, 3, *size, generator=gen) * 255
    logits = torch.randn(2, num_classes, *size, generator=gen) * 2
    seg = logits.softmax(dim=1)
    roi = torch.ones(2, *size)
    roi[0, :, -2:] = 0
    roi[1, :2] = 0
    unlabeled = torch.rand(2, *size, generator=gen) < 0.5
    return img, seg, roi, unlabeled


def _reference_terms(img, seg, roi, unlabeled, sigma_rgb, sigma_xy):
    """Gate and AS = (W (S * ROI)) * Gate in float64, naive W."""
    seg = seg.double()
    gate = roi.double() - seg.max(dim=1)[0]
    gate[unlabeled] = 1
    gate = gate.clamp(min=0)[:, None]
    masked = seg * roi.double()[:, None]
    ws = torch.stack([
        _naive_filter(i, s, sigma_rgb, sigma_xy) for i, s in zip(img, masked)
    ])
    return gate, masked, ws * gate


def test_function_forward_and_custom_backward():
    img, seg, roi, unlabeled = _small_batch()
    seg = seg.clone().requires_grad_(True)
    loss = DenseEnergyLossFunction.apply(img, seg, roi, unlabeled, 20.0, 3.0,
                                         'exact')
    loss.backward()
    gate, masked, weighted = _reference_terms(img, seg.detach(), roi,
                                              unlabeled, 20.0, 3.0)
    num = img.shape[0]
    torch.testing.assert_close(
        loss.double(), -(masked * weighted).sum() / num, rtol=1e-5, atol=0)
    expected = -2 * weighted / num * roi.double()[:, None]
    torch.testing.assert_close(
        seg.grad.double(), expected, rtol=1e-5, atol=1e-7)
    # The gradient is not the one through Gate (which depends on S): it is
    # twice the derivative of the first S factor with Gate and W S frozen.
    seg64 = seg.detach().double().requires_grad_(True)
    frozen = -(seg64 * roi.double()[:, None] * weighted).sum() / num
    frozen.backward()
    torch.testing.assert_close(
        seg.grad.double(), 2 * seg64.grad, rtol=1e-5, atol=1e-7)


def test_custom_gradient_is_first_order_exact_with_uniform_gate():
    """With every pixel unlabelled Gate = 1 regardless of S, so the formula
    with Gate fixed is the loss itself and the custom gradient must predict
    its first-order change."""
    img, seg, roi, _ = _small_batch(seed=1)
    unlabeled = torch.ones_like(roi, dtype=torch.bool)
    seg = seg.clone().requires_grad_(True)
    loss = DenseEnergyLossFunction.apply(img, seg, roi, unlabeled, 20.0, 3.0,
                                         'exact')
    loss.backward()
    direction = torch.randn(
        seg.shape, generator=torch.Generator().manual_seed(5)) * 0.01
    eps = 0.5

    def value(s):
        return DenseEnergyLossFunction.apply(img, s, roi, unlabeled, 20.0, 3.0,
                                             'exact').item()

    # The loss is quadratic in S: the central difference is exact up to
    # rounding for any step.
    fd = (value(seg.detach() + eps * direction) -
          value(seg.detach() - eps * direction)) / (2 * eps)
    predicted = float((seg.grad * direction).sum())
    assert fd == pytest.approx(predicted, rel=1e-3)


def test_module_gradient_flows_through_the_bilinear_downscale():
    gen = torch.Generator().manual_seed(3)
    img = torch.rand(2, 3, 16, 14, generator=gen) * 255
    logits = torch.randn(2, 4, 16, 14, generator=gen, requires_grad=True)
    seg_probs = logits.softmax(dim=1)
    roi = torch.ones(2, 16, 14)
    roi[:, :, 12:] = 0
    label = torch.randint(0, 4, (2, 16, 14), generator=gen)
    label[:, :6] = 255
    loss_fn = DenseEnergyLoss(
        loss_weight=0.05, weight=1e-3, sigma_rgb=15.0, sigma_xy=20.0)
    loss = loss_fn(img, seg_probs, roi, label)
    (grad, ) = torch.autograd.grad(loss, seg_probs, retain_graph=True)

    # Reference: the original's gradient at the downscaled resolution, then
    # the adjoint of the bilinear downscale.
    img_ds = F.interpolate(img, scale_factor=0.5)
    seg_ds = F.interpolate(
        seg_probs, scale_factor=0.5, mode='bilinear', align_corners=False)
    roi_ds = F.interpolate(roi[:, None], scale_factor=0.5)[:, 0]
    lab_ds = F.interpolate(label[:, None].float(), scale_factor=0.5)[:, 0]
    _, masked, weighted = _reference_terms(img_ds, seg_ds.detach(), roi_ds,
                                           lab_ds == 255, 15.0, 10.0)
    num = 2
    torch.testing.assert_close(
        loss.double(),
        0.05 * 1e-3 * -(masked * weighted).sum() / num,
        rtol=1e-5,
        atol=0)
    grad_ds = -2 * 0.05 * 1e-3 * weighted / num * roi_ds.double()[:, None]
    (expected, ) = torch.autograd.grad(seg_ds, seg_probs, grad_ds.float())
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-9)
    # And it reaches the logits.
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# (4) Gate and ROI semantics
# --------------------------------------------------------------------------
def test_gate_values():
    seg = torch.tensor([[0.9, 0.5, 1.0, 0.2], [0.1, 0.5, 0.0, 0.8]])
    seg = seg.reshape(1, 2, 1, 4)
    roi = torch.tensor([[[1.0, 1.0, 1.0, 0.0]]])
    unlabeled = torch.tensor([[[False, False, True, True]]])
    gate = energy_gate(seg, roi, unlabeled)
    # 1 - 0.9; 1 - 0.5; unlabelled -> 1 (even a confident pixel); outside
    # the ROI but unlabelled -> 1 (its S is masked out anyway).
    torch.testing.assert_close(gate, torch.tensor([[[0.1, 0.5, 1.0, 1.0]]]))
    gate = energy_gate(seg, roi, torch.zeros_like(unlabeled))
    # Confident labelled pixel: gate closed; outside the ROI: 0 - max < 0.
    torch.testing.assert_close(gate, torch.tensor([[[0.1, 0.5, 0.0, 0.0]]]))


def test_unlabeled_opens_the_gate_and_roi_removes_pixels():
    gen = torch.Generator().manual_seed(4)
    img = torch.rand(1, 3, 6, 6, generator=gen) * 255
    # One-hot (fully confident) prediction: Gate = ROI - 1 = 0 wherever the
    # pixel is labelled.
    seg = F.one_hot(torch.randint(0, 3, (1, 6, 6), generator=gen),
                    3).permute(0, 3, 1, 2).float().requires_grad_(True)
    roi = torch.ones(1, 6, 6)
    roi[..., 4:] = 0
    labelled = torch.zeros(1, 6, 6, dtype=torch.bool)
    loss = DenseEnergyLossFunction.apply(img, seg, roi, labelled, 20.0, 3.0,
                                         'exact')
    loss.backward()
    assert loss.item() == 0
    assert float(seg.grad.abs().sum()) == 0

    # Unlabel one column inside the ROI and one outside it.
    seg.grad = None
    unlabeled = labelled.clone()
    unlabeled[..., 1] = True
    unlabeled[..., 5] = True
    loss = DenseEnergyLossFunction.apply(img, seg, roi, unlabeled, 20.0, 3.0,
                                         'exact')
    loss.backward()
    assert loss.item() < 0
    grad = seg.grad.abs().sum(dim=1)[0]
    assert (grad[:, 1] > 0).all()  # the gate is open there
    assert float(grad[:, [0, 2, 3]].sum()) == 0  # closed (confident)
    assert float(grad[:, 4:].sum()) == 0  # outside the ROI

    # What S is outside the ROI does not matter.
    other = seg.detach().clone()
    other[..., 4:] = torch.rand(1, 3, 6, 2, generator=gen)
    loss_other = DenseEnergyLossFunction.apply(img, other, roi, unlabeled,
                                               20.0, 3.0, 'exact')
    assert loss_other.item() == pytest.approx(loss.item(), rel=1e-6)


# --------------------------------------------------------------------------
# (5) module: weights, downscaling, name, registry
# --------------------------------------------------------------------------
def _module_inputs(size=12, seed=6):
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand(2, 3, size, size, generator=gen) * 255
    seg = torch.randn(2, 3, size, size, generator=gen).softmax(dim=1)
    roi = torch.ones(2, size, size)
    label = torch.randint(0, 3, (2, size, size), generator=gen)
    label[:, ::2] = 255
    return img, seg, roi, label


def test_module_weights_and_downscale():
    img, seg, roi, label = _module_inputs()
    base = DenseEnergyLoss(loss_weight=1.0, weight=1.0, sigma_xy=10.0)
    scaled = DenseEnergyLoss(loss_weight=0.05, weight=1e-7, sigma_xy=10.0)
    raw = base(img, seg, roi, label)
    assert raw.item() < 0  # an energy to minimise: -S^T W S
    torch.testing.assert_close(
        scaled(img, seg, roi, label), raw * 0.05 * 1e-7, rtol=1e-6, atol=0)
    # Downscaling as the original (nearest image/ROI/label, bilinear S,
    # sigma_xy scaled), then the Function.
    img_ds = F.interpolate(img, scale_factor=0.5)
    seg_ds = F.interpolate(
        seg, scale_factor=0.5, mode='bilinear', align_corners=False)
    roi_ds = F.interpolate(roi[:, None], scale_factor=0.5)[:, 0]
    lab_ds = F.interpolate(label[:, None].float(), scale_factor=0.5)[:, 0]
    direct = DenseEnergyLossFunction.apply(img_ds, seg_ds, roi_ds,
                                           lab_ds == 255, 15.0, 5.0, 'exact')
    torch.testing.assert_close(raw, direct)
    # scale_factor 1: no resampling.
    full = DenseEnergyLoss(
        loss_weight=1.0, weight=1.0, scale_factor=1.0, sigma_xy=10.0)
    direct = DenseEnergyLossFunction.apply(img, seg, roi, label == 255, 15.0,
                                           10.0, 'exact')
    torch.testing.assert_close(full(img, seg, roi, label), direct)


def test_module_methods_agree_and_dtypes():
    img, seg, roi, label = _module_inputs(size=40)
    exact = DenseEnergyLoss(loss_weight=1.0, weight=1.0, method='exact')
    grid = DenseEnergyLoss(loss_weight=1.0, weight=1.0, method='grid')
    auto = DenseEnergyLoss(loss_weight=1.0, weight=1.0)
    ref = exact(img, seg, roi, label)
    assert grid(img, seg, roi, label).item() == pytest.approx(
        ref.item(), rel=0.02)
    # 20 x 20 downscaled pixels <= EXACT_MAX_PIXELS: 'auto' is exact.
    torch.testing.assert_close(auto(img, seg, roi, label), ref)
    # float64 probabilities: float32 loss, gradient in the input dtype.
    seg64 = seg.double().requires_grad_(True)
    loss = exact(img, seg64, roi, label)
    assert loss.dtype == torch.float32
    loss.backward()
    assert seg64.grad.dtype == torch.float64


def test_module_name_registry_and_arguments():
    loss_fn = MODELS.build(
        dict(type='DenseEnergyLoss', loss_weight=0.1, loss_name='loss_reg'))
    assert isinstance(loss_fn, DenseEnergyLoss)
    assert loss_fn.loss_name == 'loss_reg'
    assert loss_fn.loss_weight == 0.1
    default = DenseEnergyLoss()
    assert default.loss_name == 'loss_energy'
    assert (default.loss_weight, default.weight, default.sigma_rgb,
            default.sigma_xy, default.scale_factor,
            default.method) == (0.05, 1e-7, 15.0, 100.0, 0.5, 'auto')
    with pytest.raises(ValueError, match='method'):
        DenseEnergyLoss(method='lattice')
    with pytest.raises(ValueError, match='method'):
        dense_gaussian_filter(
            torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2), 1.0, 1.0,
            'lattice')
