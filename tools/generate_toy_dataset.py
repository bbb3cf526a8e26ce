# Copyright (c) OpenMMLab. All rights reserved.
"""Generate a toy WSSS dataset (see docs/toy_dataset.md).

Example::

    python tools/generate_toy_dataset.py data/toy_wsss
    python tools/generate_toy_dataset.py data/toy2 --domain outdoor

Skips the work when OUT_DIR already holds a complete dataset made with the
same parameters (unless ``--force``).
"""
import argparse
import json
import os.path as osp
import sys
import time

# From a checkout without the editable install too. mmseg_wsss_light needs no
# torch/mmseg (importing mmseg_wsss would pull them in: seconds of start-up).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_wsss_light import toy_generator as tg  # noqa: E402


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a split of 0 images is an error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not an integer') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate a seeded toy WSSS dataset (VOC layout).')
    parser.add_argument('out_dir', help='dataset root to create')
    parser.add_argument(
        '--domain',
        choices=tg.DOMAINS,
        default=tg.DEFAULT_DOMAIN,
        help='which toy domain to draw (default: %(default)s)')
    parser.add_argument('--num-train', type=positive_int, default=2000)
    parser.add_argument('--num-val', type=positive_int, default=300)
    parser.add_argument(
        '--size',
        type=int,
        default=96,
        help='image side in px (at least ' +
        ', '.join(f'{v} for {k}' for k, v in tg.MIN_SIZES.items()) + ')')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--workers',
        type=int,
        default=2,
        help='worker processes (the output does not depend on it)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate even if OUT_DIR is complete')
    args = parser.parse_args(argv)
    min_size = tg.MIN_SIZES[args.domain]
    if args.size < min_size:
        parser.error(f'argument --size: must be at least {min_size} for the '
                     f'{args.domain!r} domain (the smallest side at which its '
                     f'objects keep their shapes), got {args.size}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    params = dict(
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        seed=args.seed,
        domain=args.domain)
    if not args.force and tg.dataset_is_complete(args.out_dir, **params):
        print(f'{args.out_dir} already holds a complete toy dataset with '
              f'these parameters; skipping (use --force to regenerate)')
        return 0
    start = time.time()
    stats = tg.generate_dataset(
        args.out_dir,
        workers=args.workers,
        force=args.force,
        log=print,
        **params)
    print(f'done in {time.time() - start:.1f} s; statistics (all images):')
    print(json.dumps(stats['all'], indent=1))
    if stats['acceptance_failures']:
        print('WARNING: acceptance criteria not met: ' +
              '; '.join(stats['acceptance_failures']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
