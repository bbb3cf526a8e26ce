# Copyright (c) OpenMMLab. All rights reserved.
"""Running tools/train.py and tools/test.py from tests, small and fast."""
import os
import os.path as osp
import subprocess
import sys

from conftest import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_resnet_toy.py')
# Small and fast, identical schedule in every run (PolyLR ends at 1000).
FAST = [
    'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3',
    'param_scheduler.0.end=4', 'param_scheduler.1.begin=4',
    'param_scheduler.1.end=1000', 'randomness.seed=0'
]


def run_python(args, timeout=300, **kwargs):
    """Run ``python ARGS`` in the repository root, capturing its output."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run(
        [sys.executable] + list(args),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs)


def train_args(work_dir, data_root, max_iters, *extra, script=None):
    """Arguments of a fast toy training of ``max_iters`` iterations."""
    return [
        script or 'tools/train.py', CONFIG, '--data-root', data_root,
        '--work-dir', work_dir, *extra, '--cfg-options', *FAST,
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}'
    ]


def train(work_dir, data_root, max_iters, *extra, script=None):
    """A fast toy training through tools/train.py (or ``script``)."""
    return run_python(
        train_args(work_dir, data_root, max_iters, *extra, script=script))
