# Copyright (c) OpenMMLab. All rights reserved.
"""Print the test-set wall time of tools/test.py with and without --crf.

Example::

    python tools/analysis_tools/benchmark_test_time.py \\
        configs/cam_baseline/cam_resnet_toy.py work_dirs/.../iter_3000.pth \\
        --data-root data/toy --crf-workers 1 2
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data-root', help='dataset folder (tools/test.py)')
    parser.add_argument(
        '--crf-workers',
        type=int,
        nargs='+',
        default=[1, 2],
        help='CRF worker counts to time')
    return parser.parse_args()


def run(args, extra, work_dir):
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools', 'test.py'), args.config, args.checkpoint,
        '--work-dir', work_dir
    ] + extra
    if args.data_root:
        cmd += ['--data-root', args.data_root]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    with open(osp.join(work_dir, 'metrics.json')) as f:
        miou = json.load(f)['mIoU']
    return seconds, miou


def main():
    args = parse_args()
    print(f'config {args.config}, checkpoint {args.checkpoint}, '
          f'{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}')
    print('wall time includes start-up and model loading')
    with tempfile.TemporaryDirectory() as tmp:
        seconds, miou = run(args, [], osp.join(tmp, 'plain'))
        print(f'no CRF:            {seconds:7.1f} s  mIoU {miou:.2f}')
        for n in args.crf_workers:
            seconds, miou = run(args, ['--crf', '--crf-workers',
                                       str(n)], osp.join(tmp, f'crf{n}'))
            print(f'--crf, {n} worker(s): {seconds:7.1f} s  mIoU {miou:.2f}')


if __name__ == '__main__':
    main()
