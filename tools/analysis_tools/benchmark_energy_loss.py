# Copyright (c) OpenMMLab. All rights reserved.
"""Speed and accuracy of the pure-PyTorch rloss (DenseEnergyLoss).

Example (ToCo's setting: 448 x 448 crops, scale 0.5 -> 224 x 224, VOC)::

    python tools/analysis_tools/benchmark_energy_loss.py \\
        --size 448 --num-classes 21 --batch-size 2 [--exact] [--device cuda]

Prints the forward + backward time of the grid method (always) and of the
exact dense sum (only with ``--exact``: O(N^2), about a minute per batch on
two CPU cores at this size), then the grid's relative errors against the
exact sum on a smaller input (``--error-size``, default 224 -> 112 x 112):
of ``W S``, of the loss and of the gradient w.r.t. the probabilities.
Inputs are synthetic but structured like real ones (shaded regions with
edges, a texture patch and noise; a soft segmentation following the
regions). Figures only: nothing is asserted.
"""
import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark DenseEnergyLoss (grid vs exact).')
    parser.add_argument(
        '--size', type=int, default=448, help='input height and width')
    parser.add_argument('--num-classes', type=int, default=21)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--scale-factor', type=float, default=0.5)
    parser.add_argument('--sigma-rgb', type=float, default=15.0)
    parser.add_argument('--sigma-xy', type=float, default=100.0)
    parser.add_argument(
        '--repeat', type=int, default=3, help='timed runs (after a warm-up)')
    parser.add_argument(
        '--exact',
        action='store_true',
        help='also time the exact dense sum at --size (slow)')
    parser.add_argument(
        '--error-size',
        type=int,
        default=224,
        help='input size of the accuracy check (0 to skip)')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--threads', type=int, default=0, help='torch CPU threads (0: keep)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def synthetic_batch(batch: int, size: int, num_classes: int, seed: int):
    """Images (B, 3, S, S) in 0-255, probabilities (B, K, S, S), ROI and
    pseudo labels (B, S, S) with a third of the pixels unlabelled (255)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    imgs, regions = [], []
    for _ in range(batch):
        img = np.empty((3, size, size))
        for c in range(3):
            gy, gx = rng.uniform(-0.5, 0.5, 2) * 224 / size
            img[c] = rng.uniform(80, 170) + gy * (yy - size / 2) + gx * (
                xx - size / 2)
        reg = np.zeros((size, size), np.int64)
        for _ in range(8):
            cy, cx = rng.uniform(0, size, 2)
            ry, rx = rng.uniform(size / 10, size / 3, 2)
            mask = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 < 1
            colour = rng.uniform(0, 255, 3)
            shade = rng.uniform(-0.6, 0.6, 3) * 224 / size
            for c in range(3):
                img[c][mask] = colour[c] + shade[c] * (xx[mask] - cx)
            reg[mask] = rng.integers(1, num_classes)
        y0, x0 = rng.integers(0, size // 2, 2)
        img[:, y0:y0 + size // 4, x0:x0 + size // 4] += 40 * np.sin(
            xx[y0:y0 + size // 4, x0:x0 + size // 4] * 1.3)
        img += rng.normal(0, 6, img.shape)
        imgs.append(np.clip(img, 0, 255))
        regions.append(reg)
    img = torch.from_numpy(np.stack(imgs)).float()
    regions = torch.from_numpy(np.stack(regions))
    logits = 4.0 * F.one_hot(regions, num_classes).permute(0, 3, 1, 2).float()
    logits = F.avg_pool2d(logits, 9, stride=1, padding=4)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(
        batch,
        num_classes,
        max(2, size // 16),
        max(2, size // 16),
        generator=gen)
    logits = logits + 1.5 * F.interpolate(
        noise, size=(size, size), mode='bilinear', align_corners=False)
    roi = torch.zeros(batch, size, size)
    roi[:, :size - size // 16, size // 32:] = 1  # a padded crop box
    label = logits.argmax(dim=1)
    label[torch.rand(batch, size, size, generator=gen) < 1 / 3] = 255
    return img, logits, roi, label


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_method(method: str, inputs, args, device: torch.device, repeat: int,
                warmup: bool):
    """Median forward and backward seconds over ``repeat`` runs."""
    from mmseg_wsss.models.losses.dense_energy_loss import DenseEnergyLoss
    loss_fn = DenseEnergyLoss(
        sigma_rgb=args.sigma_rgb,
        sigma_xy=args.sigma_xy,
        scale_factor=args.scale_factor,
        method=method)
    img, logits, roi, label = inputs
    fwd, bwd = [], []
    for run in range(int(not warmup), repeat + 1):  # run 0 warms up
        leaf = logits.detach().requires_grad_(True)
        _sync(device)
        t0 = time.perf_counter()
        loss = loss_fn(img, leaf.softmax(dim=1), roi, label)
        _sync(device)
        t1 = time.perf_counter()
        loss.backward()
        _sync(device)
        t2 = time.perf_counter()
        if run:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    return statistics.median(fwd), statistics.median(bwd), loss.item()


def accuracy(args, device: torch.device) -> None:
    """Grid vs exact: W S, loss and gradient relative errors."""
    from mmseg_wsss.models.losses.dense_energy_loss import (
        DenseEnergyLoss, dense_gaussian_filter)
    img, logits, roi, label = (
        t.to(device) for t in synthetic_batch(1, args.error_size,
                                              args.num_classes, args.seed + 1))
    probs = logits.softmax(dim=1)
    scale = args.scale_factor
    img_ds = F.interpolate(img, scale_factor=scale)
    src = F.interpolate(
        probs, scale_factor=scale, mode='bilinear', align_corners=False)
    src = src * F.interpolate(roi[:, None], scale_factor=scale)
    sigma_xy = args.sigma_xy * scale
    t0 = time.perf_counter()
    exact = dense_gaussian_filter(img_ds, src, args.sigma_rgb, sigma_xy,
                                  'exact')
    _sync(device)
    t1 = time.perf_counter()
    grid = dense_gaussian_filter(img_ds, src, args.sigma_rgb, sigma_xy, 'grid')
    _sync(device)
    t2 = time.perf_counter()

    def rel(a, b):
        return float((a.double() - b.double()).norm() / b.double().norm())

    results = {}
    for method in ('exact', 'grid'):
        leaf = logits.detach().requires_grad_(True)
        loss = DenseEnergyLoss(
            sigma_rgb=args.sigma_rgb,
            sigma_xy=args.sigma_xy,
            scale_factor=scale,
            method=method)(img, leaf.softmax(dim=1), roi, label)
        loss.backward()
        results[method] = (loss.detach(), leaf.grad)
    h, w = img_ds.shape[-2:]
    print(f'accuracy at {args.error_size}x{args.error_size} input '
          f'({h}x{w} filtered, K={args.num_classes}):')
    print(f'  W S     rel. L2 error {100 * rel(grid, exact):.3f} %  '
          f'(exact {t1 - t0:.2f} s, grid {t2 - t1:.3f} s)')
    print('  loss    rel. error    '
          f'{100 * rel(results["grid"][0], results["exact"][0]):.3f} %')
    print('  d/dlogits rel. L2     '
          f'{100 * rel(results["grid"][1], results["exact"][1]):.3f} %')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # Imported after argument parsing: the package import takes seconds.
    from mmseg_wsss.models.losses.dense_energy_loss import (GRID_RGB_STEP,
                                                            GRID_XY_STEP,
                                                            _grid_layout)
    inputs = [
        t.to(device) for t in synthetic_batch(args.batch_size, args.size,
                                              args.num_classes, args.seed)
    ]
    img_ds = F.interpolate(inputs[0][:1], scale_factor=args.scale_factor)
    sizes = _grid_layout(img_ds[0], args.sigma_rgb,
                         args.sigma_xy * args.scale_factor, GRID_XY_STEP,
                         GRID_RGB_STEP)[4]
    h, w = img_ds.shape[-2:]
    print(f'device {device}, threads {torch.get_num_threads()}; input '
          f'{args.batch_size}x{args.num_classes}x{args.size}x{args.size}, '
          f'filtered at {h}x{w} ({h * w} px); grid of image 0: '
          f'{"x".join(map(str, sizes))} vertices')
    # The exact sum is timed once, without warm-up: it takes long enough.
    runs = [('grid', args.repeat, True)
            ] + ([('exact', 1, False)] if args.exact else [])
    losses = {}
    for method, repeat, warmup in runs:
        fwd, bwd, loss = time_method(method, inputs, args, device, repeat,
                                     warmup)
        losses[method] = loss
        print(f'{method:5s}: forward {1e3 * fwd:9.1f} ms  backward '
              f'{1e3 * bwd:7.1f} ms  total {1e3 * (fwd + bwd):9.1f} ms  '
              f'(loss {loss:.6g}, median of {repeat})')
    if args.exact:
        print('grid vs exact loss at this size: rel. error '
              f'{100 * abs(losses["grid"] / losses["exact"] - 1):.3f} %')
    if args.error_size:
        accuracy(args, device)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
