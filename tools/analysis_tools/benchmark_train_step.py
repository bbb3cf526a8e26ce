# Copyright (c) OpenMMLab. All rights reserved.
"""Time one training step (forward, backward, optimiser step) of a config.

Random inputs and image labels, the iteration set in mmengine's MessageHub
(so the gated losses are on), pretrained checkpoints not loaded. Prints the
time of each timed step, their median and the loss items. Figures only.

Examples (the issues' protocol: 2 CPU threads, median of 3 steps after one
warm-up step)::

    python tools/analysis_tools/benchmark_train_step.py \\
        configs/toco/toco_vitb_voc.py --batch-size 2 --size 448 \\
        --iter 2500 --threads 2
    python tools/analysis_tools/benchmark_train_step.py \\
        configs/dupl/dupl_vitb_voc.py --batch-size 2 --size 448 \\
        --iter 5000 --threads 2
    python tools/analysis_tools/benchmark_train_step.py \\
        configs/toco/toco_toy.py --batch-size 16 --size 96 --iter 2500
    python tools/analysis_tools/benchmark_train_step.py \\
        configs/fsr/fsr_vitb_voc.py --batch-size 2 --size 448 \\
        --iter 5000 --threads 2
    # GPU, fp32 and mixed precision:
    python tools/analysis_tools/benchmark_train_step.py \\
        configs/dupl/dupl_vitb_voc.py --batch-size 4 --device cuda [--amp]
"""
import argparse
import cProfile
import os.path as osp
import pstats
import resource
import statistics
import sys
import time
from typing import Optional

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mmseg_wsss  # noqa: E402,F401
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MessageHub  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import LabelData  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

from mmseg_wsss.utils import drop_pretrained, num_extra_views  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark one training step of a config.')
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--size', type=int, default=448, help='crop size')
    parser.add_argument(
        '--iter',
        type=int,
        default=10**6,
        help='iteration written to the MessageHub (gates); default: past '
        'every gate')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument(
        '--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision (GPU)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides, e.g. '
        'model.train_cfg.reuse_forward_cam=True')
    parser.add_argument(
        '--profile',
        metavar='FILE',
        help='cProfile the timed steps (not the warm-up), write the stats to '
        'FILE (for pstats / snakeviz) and print the functions of most '
        'cumulative and most own time')
    parser.add_argument(
        '--profile-top',
        type=int,
        default=25,
        help='functions printed per ordering with --profile')
    return parser.parse_args(argv)


def random_batch(num_classes: int,
                 batch: int,
                 size: int,
                 seed: int,
                 views: int = 0):
    """uint8 images and samples with two present classes each (and
    ``views`` extra views each, for ToCo's CTC and FSR)."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(
            torch.randint(
                0, 256, (3, size, size), generator=gen, dtype=torch.uint8))
        label = torch.zeros(num_classes - 1)
        label[torch.randperm(num_classes - 1, generator=gen)[:2]] = 1
        sample = SegDataSample()
        sample.gt_cls_label = LabelData(data=label)
        sample.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                img_box=[0, size, 0, size]))
        if views:
            sample.views = torch.randint(
                0,
                256, (views, 3, size, size),
                generator=gen,
                dtype=torch.uint8)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build_train_step(config: str,
                     batch_size: int = 2,
                     size: int = 448,
                     device: str = 'cpu',
                     amp: bool = False,
                     seed: int = 0,
                     cfg_options: Optional[dict] = None):
    """Build a config's model (pretrained weights dropped) and optimiser
    and a random batch; return ``(step, data)``, where ``step(iteration)``
    runs one training step with ``iteration`` in the MessageHub (so the
    gated losses are on) and returns the loss dict. ``step.num_params`` is
    the model's size in millions."""
    torch.manual_seed(seed)
    init_default_scope('mmseg')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    drop_pretrained(cfg.model)
    cfg.model.data_preprocessor.size = (size, size)
    model = MODELS.build(cfg.model).to(device).train()
    optim_cfg = dict(cfg.optim_wrapper)
    if amp:
        optim_cfg['type'] = 'AmpOptimWrapper'
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    data = random_batch(model.num_classes, batch_size, size, seed,
                        num_extra_views(cfg))

    def step(iteration: int) -> dict:
        MessageHub.get_current_instance().update_info('iter', iteration)
        return model.train_step(data, optim_wrapper)

    step.num_params = sum(p.numel() for p in model.parameters()) / 1e6
    return step, data


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    step_fn, _ = build_train_step(
        args.config,
        batch_size=args.batch_size,
        size=args.size,
        device=args.device,
        amp=args.amp,
        seed=args.seed,
        cfg_options=args.cfg_options)
    n_params = step_fn.num_params

    def sync():
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()

    profiler = cProfile.Profile() if args.profile else None
    times, losses = [], {}
    for step in range(args.warmup + args.repeat):
        timed = step >= args.warmup
        # One iteration per step, so per-iteration work (an EMA teacher's
        # update) is timed too; the gates stay open.
        sync()
        if profiler is not None and timed:
            profiler.enable()
        start = time.perf_counter()
        losses = step_fn(args.iter + step)
        sync()
        if timed:
            times.append(time.perf_counter() - start)
            if profiler is not None:
                profiler.disable()
    print(f'{osp.basename(args.config)}: {n_params:.2f}M parameters, '
          f'batch {args.batch_size} x {args.size}^2, iteration {args.iter}, '
          f'{args.device}' +
          (f' ({args.threads} threads)' if args.device == 'cpu' else '') +
          (', amp' if args.amp else ''))
    print('step times (s): ' + ', '.join(f'{t:.3f}' for t in times))
    print(f'median step time: {statistics.median(times):.3f} s')
    print('losses: ' +
          ', '.join(f'{k} {float(torch.as_tensor(v).detach()):.4f}'
                    for k, v in losses.items()))
    if args.device.startswith('cuda'):
        print(f'peak GPU memory: '
              f'{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB')
    else:
        # ru_maxrss is in KiB on Linux: the process's peak resident memory.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f'peak resident memory: {peak:.2f} GiB')
    if profiler is not None:
        print_profile(profiler, args.profile, args.repeat, args.profile_top)


def print_profile(profiler: cProfile.Profile, out_file: str, steps: int,
                  top: int) -> None:
    """Write ``profiler``'s stats to ``out_file`` and print the ``top``
    functions by cumulative and by own time (totals over ``steps`` timed
    steps; divide by it for one step). GPU kernels run asynchronously:
    their time shows where the host waits (``cuda.synchronize``)."""
    profiler.dump_stats(out_file)
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    for order, name in (('cumulative', 'cumulative'), ('tottime', 'own')):
        print(f'profile of {steps} step(s), by {name} time '
              f'(stats in {out_file}):')
        stats.sort_stats(order).print_stats(top)


if __name__ == '__main__':
    main()
