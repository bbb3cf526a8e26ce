# Copyright (c) OpenMMLab. All rights reserved.
"""Throughput of the up-front image check (``check_images=True`` of the
WSSS datasets, :mod:`mmseg_wsss.datasets.image_check`).

Examples::

    # the generated toy dataset
    python tools/analysis_tools/benchmark_image_check.py \\
        --folder data/toy/JPEGImages --workers 2
    # 20,000 synthetic VOC-sized JPEGs (written once to a temporary folder)
    python tools/analysis_tools/benchmark_image_check.py \\
        --synthetic 20000 --size 500x375 --workers 1 2

Prints images/s per worker count for the check as the datasets run it
(OpenCV's 1/8-scale decode) and, with ``--compare-decoders``, in this
process, for cv2 and PIL full-size decodes and PIL's 1/8 draft decode of the
same files.
The files are read from the page cache after the first pass (``--repeat``
passes are timed, the best is printed): the figures are decode throughput,
not disk throughput. Timings are figures only.
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmseg_wsss.datasets import image_check  # noqa: E402

EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the image check (images/s per worker count).')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--folder', help='check the images in this folder')
    src.add_argument(
        '--synthetic',
        type=int,
        metavar='N',
        help='generate N synthetic JPEGs in a temporary folder and check '
        'them')
    parser.add_argument(
        '--size',
        default='500x375',
        help='WxH of the synthetic images (default 500x375, VOC-like)')
    parser.add_argument(
        '--quality',
        type=int,
        default=90,
        help='JPEG quality of the synthetic images')
    parser.add_argument(
        '--workers',
        type=int,
        nargs='+',
        default=[2],
        help='worker counts to time (0 = in this process)')
    parser.add_argument(
        '--repeat', type=int, default=1, help='timed passes per count')
    parser.add_argument(
        '--compare-decoders',
        action='store_true',
        help='also time, in this process, the check\'s decode, cv2 and PIL '
        'full decodes and a PIL 1/8 draft decode of the same files')
    parser.add_argument(
        '--keep', help='write the synthetic images here and keep them')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split('x'))
    except ValueError:
        parser.error(f'--size must be WxH (e.g. 500x375), got {args.size!r}')
    args.wh = (w, h)
    if args.synthetic is not None and args.synthetic < 1:
        parser.error('--synthetic needs a positive count')
    return args


def _synthetic_image(rng: np.random.RandomState, w: int, h: int) -> np.ndarray:
    """Smooth colour regions, edges and mild noise: JPEG sizes like
    photographs' (tens of KB at 500x375), unlike pure noise."""
    import cv2
    low = rng.randint(0, 256, (max(2, h // 40), max(2, w // 40), 3))
    img = cv2.resize(
        low.astype(np.uint8), (w, h),
        interpolation=cv2.INTER_CUBIC).astype(np.int16)
    for _ in range(rng.randint(2, 6)):  # a few objects with sharp edges
        x0, y0 = rng.randint(0, w), rng.randint(0, h)
        color = tuple(int(c) for c in rng.randint(0, 256, 3))
        cv2.circle(img, (x0, y0), int(rng.randint(10, max(11, h // 3))), color,
                   -1)
    img += rng.randint(-12, 13, img.shape).astype(np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_synthetic(folder: str, num: int, wh, quality: int, seed: int):
    """Write ``num`` JPEGs (a few distinct images, each saved under many
    names: the decode cost is what matters)."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    blobs = []
    for _ in range(min(num, 64)):
        im = Image.fromarray(_synthetic_image(rng, *wh))
        path = osp.join(folder, 'tmp.jpg')
        im.save(path, quality=quality)
        with open(path, 'rb') as f:
            blobs.append(f.read())
        os.remove(path)
    paths = []
    for i in range(num):
        path = osp.join(folder, f'{i:06d}.jpg')
        with open(path, 'wb') as f:
            f.write(blobs[i % len(blobs)])
        paths.append(path)
    return paths, sum(len(b) for b in blobs) / len(blobs)


def _cv2_full(path):
    import cv2
    cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)


def _pil_full(path):
    from PIL import Image
    with Image.open(path) as im:
        im.load()


def _pil_draft(path):
    from PIL import Image
    with Image.open(path) as im:
        if im.format == 'JPEG':
            im.draft(im.mode, (im.width // 8, im.height // 8))
        im.load()


# (label, per-file decode), timed in this process by --compare-decoders.
DECODERS = [
    ('the check (cv2 1/8 decode)', image_check.decode_error),
    ('cv2 full decode (the training pipeline)', _cv2_full),
    ('PIL full decode', _pil_full),
    ('PIL 1/8 draft decode', _pil_draft),
]


def main(argv=None):
    args = parse_args(argv)
    tmp = None
    if args.synthetic is not None:
        folder = args.keep or tempfile.mkdtemp(prefix='bench_image_check_')
        tmp = None if args.keep else folder
        start = time.perf_counter()
        paths, mean_bytes = make_synthetic(folder, args.synthetic, args.wh,
                                           args.quality, args.seed)
        print(f'wrote {len(paths)} synthetic {args.wh[0]}x{args.wh[1]} '
              f'JPEGs (quality {args.quality}, {mean_bytes / 1024:.0f} KB '
              f'each) to {folder} in {time.perf_counter() - start:.1f} s')
    else:
        if not osp.isdir(args.folder):
            raise SystemExit(f'--folder {args.folder}: not a folder')
        paths = sorted(
            osp.join(args.folder, f) for f in os.listdir(args.folder)
            if f.lower().endswith(EXTENSIONS))
        if not paths:
            raise SystemExit(f'--folder {args.folder}: no image files '
                             f'({", ".join(EXTENSIONS)})')
        mean_bytes = sum(osp.getsize(p) for p in paths) / len(paths)
        print(f'{len(paths)} images in {args.folder} '
              f'({mean_bytes / 1024:.1f} KB each on average)')
    try:
        load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
        print(f'{os.cpu_count()} CPU(s), load average {load:.2f} at start'
              if load is not None else f'{os.cpu_count()} CPU(s)')
        # One untimed pass: the page cache then holds the files.
        for path in paths:
            with open(path, 'rb') as f:
                f.read()
        for workers in args.workers:
            best = None
            for _ in range(args.repeat):
                start = time.perf_counter()
                bad = image_check.find_bad_images(
                    paths, workers=workers, progress=False)
                elapsed = time.perf_counter() - start
                best = elapsed if best is None else min(best, elapsed)
            print(f'image check, {workers} worker(s): '
                  f'{len(paths) / best:,.0f} images/s ({best:.2f} s for '
                  f'{len(paths)} images, {len(bad)} bad)')
        if args.compare_decoders:
            for label, decode in DECODERS:
                start = time.perf_counter()
                for path in paths:
                    decode(path)
                elapsed = time.perf_counter() - start
                print(f'{label}, in this process: '
                      f'{len(paths) / elapsed:,.0f} images/s')
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
