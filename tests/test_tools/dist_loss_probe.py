# Copyright (c) OpenMMLab. All rights reserved.
"""Run one deterministic training iteration and record what each rank saw.

Helper of ``test_dist_train.py`` (not a test itself). Launched either as a
single process::

    python tests/test_tools/dist_loss_probe.py CONFIG --data-root DIR \
        --out-dir OUT --batch-size 4

or distributed, like ``tools/train.py``::

    python -m torch.distributed.run --nproc_per_node=2 --master_port=PORT \
        tests/test_tools/dist_loss_probe.py CONFIG --data-root DIR \
        --out-dir OUT --batch-size 2 --launcher pytorch

The train pipeline is replaced by a fixed resize (no random augmentation),
the sampler does not shuffle and ``max_iters=1``. Every rank writes
``OUT/rank{RANK}.json`` with its world size, a checksum of its weights before
the first iteration, the image paths of its first batch, the loss of that
batch, and per-parameter statistics of the gradient the optimizer applied
(after DDP's all-reduce).
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import sys

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import mmseg_wsss  # noqa: E402,F401  (applies the stack fixes, registers)
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import get_rank, get_world_size  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmseg_wsss.registry import HOOKS  # noqa: E402
from mmseg_wsss.utils import set_data_root  # noqa: E402
from mmseg_wsss.utils import setup_cpu_distributed  # noqa: E402
from mmseg_wsss.utils import sync_num_classes  # noqa: E402

HOOK_NAME = 'WSSSTestDistLossProbeHook'


@HOOKS.register_module(name=HOOK_NAME, force=True)
class DistLossProbeHook(Hook):
    """Record the first iteration of a rank into ``out_dir/rank{R}.json``."""
    priority = 'VERY_LOW'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.record = {}

    @staticmethod
    def _module(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        # Weights are initialised in Runner.train(), i.e. after the DDP
        # wrapper has broadcast rank 0's parameters: every rank must seed
        # the same initialisation itself.
        sha = hashlib.sha256()
        for name, param in self._module(runner).named_parameters():
            sha.update(name.encode())
            sha.update(param.detach().cpu().contiguous().numpy().tobytes())
        self.record.update(
            rank=get_rank(),
            world_size=get_world_size(),
            batch_size=runner.train_dataloader.batch_size,
            init_sha256=sha.hexdigest(),
            model_wrapper=type(runner.model).__name__)

        # The gradients are zeroed right after the optimizer step, so catch
        # them inside the step of the first iteration (after DDP reduced
        # them over the ranks).
        optim_wrapper = runner.optim_wrapper
        original_step = optim_wrapper.step
        module = self._module(runner)
        record = self.record

        def step(*args, **kwargs):
            if 'grads' not in record:
                record['grads'] = {
                    name: [float(p.grad.norm()),
                           float(p.grad.sum())] if p.grad is not None else None
                    for name, p in module.named_parameters()
                }
            return original_step(*args, **kwargs)

        optim_wrapper.step = step

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if runner.iter != 0:
            return
        self.record['img_paths'] = [
            sample.img_path for sample in data_batch['data_samples']
        ]

        def value(v):
            return float(v.detach() if isinstance(v, torch.Tensor) else v)

        self.record['loss_terms'] = {
            k: value(v)
            for k, v in outputs.items() if k.startswith('loss_')
        }
        self.record['loss'] = value(outputs['loss'])
        os.makedirs(self.out_dir, exist_ok=True)
        path = osp.join(self.out_dir, f'rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(self.record, f, indent=1)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--batch-size', type=int, required=True)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='overrides')
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    set_data_root(cfg, args.data_root)
    sync_num_classes(cfg)
    cfg.work_dir = args.work_dir or osp.join(args.out_dir, 'work_dir')

    crop_size = (96, 96)
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=crop_size, keep_ratio=False),
        dict(type='PackWSSSInputs'),
    ]
    cfg.train_dataloader.update(
        batch_size=args.batch_size,
        num_workers=0,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False))
    # One training iteration, no validation (the loop validates after its
    # last iteration whatever val_interval says).
    cfg.train_cfg.update(max_iters=1, val_interval=1000)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=1000, save_last=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks', None) or
                            []) + [dict(type=HOOK_NAME, out_dir=args.out_dir)]

    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
