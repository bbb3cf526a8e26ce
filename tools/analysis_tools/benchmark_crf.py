# Copyright (c) OpenMMLab. All rights reserved.
"""Throughput of the dense-CRF post-processing step (CRFPostProcessor).

Times the asynchronous path of the test loop (``tools/test.py --crf``,
:class:`WSSSTestLoop`): each data sample is submitted to
:class:`CRFPostProcessor`, which reads its image from ``img_path``, turns its
``seg_logits`` into probabilities (softmax) and refines them with
:class:`DenseCRF` in its worker processes; label maps come back.

Example (VOC-sized inputs, ToCo's test-time CRF)::

    python tools/analysis_tools/benchmark_crf.py --preset toco \\
        --num-images 24 --height 375 --width 500 --num-classes 21 \\
        --workers 1 2

``--backend torch`` times the PyTorch CRF (:class:`TorchDenseCRF`) instead:
blocking ``CRFPostProcessor.refine`` calls on batches of ``--batch-size``
images on ``--device`` (``--threads`` CPU threads), and its agreement with
pydensecrf on the same inputs (share of pixels whose argmax is equal, and
the largest probability difference)::

    python tools/analysis_tools/benchmark_crf.py --preset toco \
        --backend torch --device cuda --batch-size 16

Inputs are random but structured like real ones: a smooth random RGB image
(written as a PNG to a temporary folder) and smooth random logits. Prints
images/s per worker count (``--workers 0`` runs inline in this process);
timings are figures only.
"""
import argparse
import os
import os.path as osp
import tempfile
import time

import cv2
import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the dense CRF (images/s per worker count).')
    parser.add_argument(
        '--preset',
        default='toco',
        help='CRF preset (toco, toco_cam, 1stage, rrm)')
    parser.add_argument('--num-images', type=int, default=24)
    parser.add_argument('--height', type=int, default=375)
    parser.add_argument('--width', type=int, default=500)
    parser.add_argument('--num-classes', type=int, default=21)
    parser.add_argument(
        '--workers',
        type=int,
        nargs='+',
        default=[1, 2],
        help='worker counts to time (0 = inline, no pool)')
    parser.add_argument(
        '--xy-scale', type=float, default=1.0, help='DenseCRF xy_scale')
    parser.add_argument(
        '--return-label',
        action='store_true',
        help='kept for compatibility: the post-processor\'s workers always '
        'return label maps')
    parser.add_argument(
        '--num-distinct',
        type=int,
        default=4,
        help='distinct inputs generated and cycled (bounds memory)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--backend',
        choices=('pydensecrf', 'torch'),
        default='pydensecrf',
        help='CRF backend (torch: TorchDenseCRF, blocking batched calls)')
    parser.add_argument(
        '--device', default='cpu', help='device of the torch backend')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=8,
        help='images per call of the torch backend')
    parser.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument(
        '--no-agreement',
        action='store_true',
        help='torch backend: skip the comparison with pydensecrf')
    return parser.parse_args(argv)


def bench_torch(args, rng: np.random.Generator) -> int:
    """The PyTorch CRF: throughput of batched blocking calls and agreement
    with pydensecrf."""
    import torch
    from mmseg_wsss.models.postprocess import CRFPostProcessor
    if args.threads:
        torch.set_num_threads(args.threads)
    post = CRFPostProcessor(
        preset=args.preset,
        xy_scale=args.xy_scale,
        backend='torch',
        device=args.device)
    print(f'dense CRF benchmark (torch backend, {args.device}, '
          f'{torch.get_num_threads()} CPU threads): preset={args.preset} '
          f'{post.crf.params}')
    print(f'inputs: {args.num_images} images of {args.height}x{args.width}, '
          f'{args.num_classes} classes, batches of {args.batch_size}')
    data = [
        make_sample(rng, args.height, args.width, args.num_classes)
        for _ in range(max(1, min(args.num_distinct, args.num_images)))
    ]
    images = [d[0] for d in data]
    probs = [post.to_probs(torch.from_numpy(d[1])) for d in data]
    post.refine(images[:1], probs[:1])  # warm-up (CUDA context, kernels)
    if args.device.startswith('cuda'):
        torch.cuda.synchronize()
    start = time.perf_counter()
    done = 0
    while done < args.num_images:
        n = min(args.batch_size, args.num_images - done)
        idx = [(done + i) % len(images) for i in range(n)]
        post.refine([images[i] for i in idx], [probs[i] for i in idx])
        done += n
    if args.device.startswith('cuda'):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    print(f'torch: {args.num_images / elapsed:.2f} img/s '
          f'({elapsed / args.num_images:.3f} s/img)')
    if args.device.startswith('cuda'):
        print(f'peak GPU memory: '
              f'{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB')
    if args.no_agreement:
        return 0
    try:
        ref = CRFPostProcessor(
            preset=args.preset, xy_scale=args.xy_scale, workers=0)
        start = time.perf_counter()
        want = [ref.crf(i, p) for i, p in zip(images, probs)]
        ref_time = (time.perf_counter() - start) / len(images)
    except ImportError as exc:
        print(f'agreement: skipped ({exc})')
        return 0
    got = post.refine_probs(images, probs)
    agree = np.mean([(w.argmax(0) == g.argmax(0)).mean()
                     for w, g in zip(want, got)])
    diff = max(float(np.abs(w - g).max()) for w, g in zip(want, got))
    print(f'pydensecrf (1 process): {1 / ref_time:.2f} img/s; agreement '
          f'with it on {len(images)} images: {100 * agree:.3f} % of pixels '
          f'with the same label, max probability difference {diff:.2e}')
    return 0


def _smooth_noise(rng: np.random.Generator, channels: int, height: int,
                  width: int, cell: int) -> np.ndarray:
    """(height, width, channels) float32 noise, smooth over ~cell pixels."""
    small = rng.standard_normal(
        (max(2, height // cell), max(2, width // cell), channels))
    out = cv2.resize(
        small.astype(np.float32), (width, height),
        interpolation=cv2.INTER_CUBIC)
    return out.reshape(height, width, channels)


def make_sample(rng: np.random.Generator, height: int, width: int,
                num_classes: int):
    """A smooth random (H, W, 3) uint8 image and (C, H, W) float32 logits."""
    image = _smooth_noise(rng, 3, height, width, cell=24) * 50 + 128
    image += rng.normal(scale=4, size=image.shape)  # sensor-like noise
    image = np.clip(image, 0, 255).astype(np.uint8)
    logits = _smooth_noise(rng, num_classes, height, width, cell=48) * 3
    return image, np.ascontiguousarray(logits.transpose(2, 0, 1))


def make_data_sample(image: np.ndarray, logits: np.ndarray, path: str):
    """A SegDataSample as a segmentor's predict leaves it: ``img_path`` (the
    image, written to ``path`` as RGB) and ``seg_logits`` (C, H, W)."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cv2.imwrite(path, image[..., ::-1])  # RGB -> BGR for OpenCV
    sample = SegDataSample(metainfo=dict(img_path=path))
    sample.seg_logits = PixelData(data=torch.from_numpy(logits))
    return sample


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.backend == 'torch':
        return bench_torch(args, np.random.default_rng(args.seed))
    # Imported after argument parsing: the package import takes seconds.
    from mmseg_wsss.models.postprocess import CRFPostProcessor

    def build(workers: int) -> CRFPostProcessor:
        return CRFPostProcessor(
            preset=args.preset,
            xy_scale=args.xy_scale,
            prob_mode='softmax',
            workers=workers)

    crf = build(0).crf
    rng = np.random.default_rng(args.seed)
    print(f'dense CRF benchmark: preset={args.preset} {crf.params}')
    print(f'inputs: {args.num_images} images of {args.height}x{args.width}, '
          f'{args.num_classes} classes (logits float32, softmax), '
          'through CRFPostProcessor.submit/results/drain (image read from '
          f'PNG), return_label=True, cpu_count={os.cpu_count()}')
    if hasattr(os, 'getloadavg'):  # other load skews the figures
        print('load average before: %.2f %.2f %.2f' % os.getloadavg())

    with tempfile.TemporaryDirectory() as tmp:
        samples = [
            make_data_sample(
                *make_sample(rng, args.height, args.width, args.num_classes),
                osp.join(tmp, f'img_{i}.png'))
            for i in range(max(1, min(args.num_distinct, args.num_images)))
        ]
        for workers in args.workers:
            post = build(workers)
            start = time.perf_counter()
            try:
                post.start()
                ready = time.perf_counter()
                cpu = time.process_time()
                done = 0
                for i in range(args.num_images):
                    post.submit(i, samples[i % len(samples)])
                    done += sum(1 for _ in post.results())
                done += sum(1 for _ in post.drain())
                elapsed = time.perf_counter() - ready
                cpu = time.process_time() - cpu
            finally:
                post.close()
            assert done == args.num_images, (done, args.num_images)
            line = (f'workers={workers}: {args.num_images / elapsed:.2f} '
                    f'img/s ({elapsed / args.num_images:.3f} s/img, '
                    f'pool start {ready - start:.2f} s')
            if workers == 0:  # all CRF work is in this process: CPU too
                line += f', {cpu / args.num_images:.3f} CPU s/img'
            print(line + ')')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
