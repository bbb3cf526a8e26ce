# Copyright (c) OpenMMLab. All rights reserved.
"""Speed of DuPL's adaptive noise filtering with both mixture backends.

Example::

    python tools/analysis_tools/benchmark_gmm.py [--device cuda] \\
        [--threads 1] [--repeat 5]

Times ``filter_noisy_labels`` per batch with ``backend='sklearn'`` (the
official per-image ``sklearn.mixture.GaussianMixture`` on CPU numpy; the
loss maps are copied to the host, as the official code does) and
``backend='torch'`` (``GaussianMixture1D`` batched on ``--device``), on
synthetic loss maps shaped like real ones: blob-shaped foreground (about a
third of the pixels), ignore pixels, small losses on most foreground pixels
and a high-loss bump on a wrong-class blob. Configurations: VOC crops
(448 x 448, batch 2 and 4, one GPU's share of DuPL's batch) and the toy
config (96 x 96, batch 8). Also prints the share of foreground pixels on
which the backends decide differently. Figures only: nothing is asserted.
"""
import argparse
import statistics
import time

import numpy as np
import torch

CONFIGS = ((2, 448), (4, 448), (8, 96))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the GMM noise filter (sklearn vs torch).')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--threads', type=int, default=0, help='torch CPU threads (0: keep)')
    parser.add_argument(
        '--repeat', type=int, default=5, help='timed runs (after a warm-up)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def synthetic_maps(batch: int, size: int, seed: int):
    """Loss maps (B, S, S) float32 and pseudo labels (B, S, S) long.

    Per image: elliptic foreground blobs of random classes over background
    0, 10 % of the pixels ignored (255), foreground losses ~ |N(0, 0.35)|
    and, on one blob (a wrong class), ~ N(2.5, 0.6).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    ces, labels = [], []
    for _ in range(batch):
        label = np.zeros((size, size), np.int64)
        ce = np.abs(rng.normal(0, 0.35, (size, size)))
        for i in range(4):
            cy, cx = rng.uniform(0.2, 0.8, 2) * size
            ry, rx = rng.uniform(0.1, 0.3, 2) * size
            blob = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 < 1
            label[blob] = rng.integers(1, 21)
            if i == 0:  # the noisy blob
                ce[blob] = rng.normal(2.5, 0.6, int(blob.sum()))
        label[rng.random((size, size)) < 0.1] = 255
        ces.append(np.clip(ce, 0, None))
        labels.append(label)
    return (torch.from_numpy(np.stack(ces)).float(),
            torch.from_numpy(np.stack(labels)))


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_backend(backend: str, ce, label, device: torch.device, repeat: int):
    """Median seconds per batch over ``repeat`` runs, and the last mask."""
    from mmseg_wsss.models.wsss.noise_filter import filter_noisy_labels
    times = []
    for run in range(repeat + 1):  # run 0 warms up
        _sync(device)
        t0 = time.perf_counter()
        _, mask = filter_noisy_labels(ce, label, backend=backend)
        _sync(device)
        if run:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), mask


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f'device {device}, torch threads {torch.get_num_threads()}, '
          f'median of {args.repeat}')
    for batch, size in CONFIGS:
        ce, label = (
            t.to(device) for t in synthetic_maps(batch, size, args.seed))
        fg = (label != 0) & (label != 255)
        fitted = (fg & (ce > 0.1)).flatten(1).sum(1).float()
        t_sk, m_sk = time_backend('sklearn', ce, label, device, args.repeat)
        t_th, m_th = time_backend('torch', ce, label, device, args.repeat)
        differ = float((m_sk != m_th)[fg].float().mean())
        print(f'batch {batch:2d} x {size}x{size}: fg '
              f'{100 * float(fg.float().mean()):4.1f} %, fitted losses / '
              f'image {int(fitted.mean()):6d}, filtered '
              f'{100 * float(m_sk[fg].float().mean()):4.1f} % of fg | '
              f'sklearn {1e3 * t_sk:7.1f} ms  torch {1e3 * t_th:7.1f} ms '
              f'per batch ({t_sk / t_th:4.1f}x) | decisions differ on '
              f'{100 * differ:.3f} % of fg')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
