# Copyright (c) OpenMMLab. All rights reserved.
"""Train a WSSS segmentor (mmseg's tools/train.py plus mmseg_wsss)."""
import argparse
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import mmseg_wsss  # noqa: E402,F401  (applies the stack fixes, registers)
from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmseg.registry import RUNNERS  # noqa: E402

from mmseg_wsss.engine.runner import resolve_resume  # noqa: E402
from mmseg_wsss.utils import kernel_fingerprint  # noqa: E402
from mmseg_wsss.utils import (load_tool_config, setup_cpu_distributed,  # noqa
                              teardown_distributed)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a WSSS segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'newest intact checkpoint in the work dir, passing over damaged ones '
        '(an error if there is none)')
    parser.add_argument(
        '--resume-if-possible',
        action='store_true',
        help='resume from the newest intact checkpoint in the work dir if '
        'there is one, else start from scratch (for jobs that are requeued '
        'with the same command)')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log to TensorBoard (WORK_DIR/TIMESTAMP/vis_data; needs '
        '`pip install -e ".[tb]"`)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the LR linearly from the total batch the config records '
        '(auto_scale_lr.base_batch_size) to the actual total batch')
    parser.add_argument(
        '--data-root',
        help='use this dataset folder for every dataloader; for a '
        'VOC-layout folder with classes.txt the class count follows it')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch >= 2.0 passes `--local-rank`; older launchers `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def add_tensorboard(cfg) -> None:
    """Log to TensorBoard too (mmengine's ``TensorboardVisBackend``)."""
    import importlib.util
    if importlib.util.find_spec('tensorboard') is None:
        raise SystemExit('--tensorboard needs the tensorboard package: '
                         'pip install -e ".[tb]" (or pip install tensorboard)')
    backend = dict(type='TensorboardVisBackend')
    backends = list(cfg.visualizer.get('vis_backends') or [])
    if all(b.get('type') != backend['type'] for b in backends):
        backends.append(backend)
    cfg.visualizer.vis_backends = backends


def main():
    args = parse_args()

    cfg = load_tool_config(args)

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs `auto_scale_lr = dict('
                             'base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True

    if args.resume is not None and args.resume_if_possible:
        raise SystemExit('--resume and --resume-if-possible exclude each '
                         'other')
    resume_notes = resolve_resume(
        cfg,
        'auto' if args.resume_if_possible else args.resume,
        if_possible=args.resume_if_possible)
    if args.tensorboard:
        add_tensorboard(cfg)

    setup_cpu_distributed(cfg)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    for level, message in resume_notes:  # into the run's log file too
        runner.logger.log(level, message)
    # A run repeats bit for bit only on the same kind of CPU kernels, and
    # toy figures move by points across kinds (docs/benchmark_toy.md).
    runner.logger.info(f'CPU kernel fingerprint: {kernel_fingerprint()}')
    runner.train()
    teardown_distributed()


if __name__ == '__main__':
    main()
