# Copyright (c) OpenMMLab. All rights reserved.
"""Peak memory of one training step of a config, and the largest batch
that fits a memory budget (#19 item 5).

Each measurement runs one training step (warm-up step included, so the
optimiser state exists) in a fresh Python process, so peaks never carry
over: on a GPU ``torch.cuda.max_memory_reserved`` (what the caching
allocator holds, what ``nvidia-smi`` shows and what runs out first) and
``max_memory_allocated``; on the CPU the process's peak resident memory
(``ru_maxrss``: it includes the interpreter and the libraries, about 0.5
GiB, so CPU figures only rank configs).

The largest batch per budget: memory grows linearly with the batch
(parameters, gradients and optimiser state fixed, activations per image),
so two measured batches give ``fixed + per_image * B`` and the estimate
``floor((budget - fixed) / per_image)``. On a GPU, ``--verify`` then runs
that batch with the allocator capped at the budget
(``torch.cuda.set_per_process_memory_fraction``) and steps down until a
batch fits (and up while the next one fits), so the printed figure is a
measured one; without a GPU only the estimate is printed, marked as such.

Examples::

    # the configs' batch per GPU and crop, fp32 and AMP, 24 and 80 GB
    python tools/analysis_tools/benchmark_memory.py \\
        configs/dupl/dupl_vitb_voc.py --device cuda --verify
    python tools/analysis_tools/benchmark_memory.py \\
        configs/dupl/dupl_vitb_voc.py --device cuda --amp --verify
    # CPU (resident memory, ranking only)
    python tools/analysis_tools/benchmark_memory.py \\
        configs/cam_baseline/cam_resnet_toy.py --fit-batches 1 2
"""
import argparse
import json
import math
import os.path as osp
import resource
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.abspath(osp.dirname(__file__)))

GIB = 2**30
_MARK = 'MEMORY_JSON '


def parse_args(argv=None):
    import torch
    parser = argparse.ArgumentParser(
        description='Peak training-step memory of a config and the largest '
        'batch per memory budget.')
    parser.add_argument('config')
    parser.add_argument(
        '--batch-size',
        type=int,
        help='the batch to report (default: the config\'s '
        'train_dataloader.batch_size, i.e. per GPU)')
    parser.add_argument(
        '--size', type=int, help='crop size (default: the config\'s)')
    parser.add_argument(
        '--fit-batches',
        type=int,
        nargs=2,
        default=(1, 2),
        metavar=('B1', 'B2'),
        help='the two batches of the linear fit (default 1 2)')
    parser.add_argument(
        '--budgets',
        type=float,
        nargs='+',
        default=(24, 80),
        help='GPU memory sizes in GiB (a 24 GB RTX 3090 / 4090 and an 80 GB '
        'A100 / H100 have 24 and 80 GiB; default 24 80)')
    parser.add_argument(
        '--context-gib',
        type=float,
        default=0.5,
        help='left out of each budget for the CUDA context and libraries, '
        'which the allocator does not count (default 0.5)')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='GPU: run the estimated largest batch under a memory cap of '
        'each budget and step down / up to the measured largest')
    parser.add_argument(
        '--iter',
        type=int,
        default=10**6,
        help='iteration in the MessageHub (default: past every gate)')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='config overrides key=value, passed on as given')
    # One measurement in this process (what the parent runs per batch).
    parser.add_argument('--measure', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--cap-gb', type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.verify and not args.device.startswith('cuda'):
        parser.error('--verify caps the GPU allocator: it needs --device '
                     'cuda')
    if min(args.fit_batches) < 1 or args.fit_batches[0] == \
            args.fit_batches[1]:
        parser.error('--fit-batches needs two different batches >= 1')
    return args


def config_defaults(config: str, options: Sequence[str] = ()) -> Tuple:
    """The config's batch per GPU and crop size (after the overrides)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(_options_dict(options))
    size = cfg.model.get('data_preprocessor',
                         {}).get('size') or cfg.get('crop_size')
    if size is None:
        raise ValueError(f'{config}: no data_preprocessor.size or '
                         'crop_size; pass --size')
    return int(cfg.train_dataloader.batch_size), int(size[0])


def linear_fit(b1: int, m1: float, b2: int, m2: float) -> Tuple[float, float]:
    """``(fixed, per_image)`` of the line through two measurements."""
    per_image = (m2 - m1) / (b2 - b1)
    return m1 - per_image * b1, per_image


def largest_batch(fixed: float, per_image: float, budget: float) -> int:
    """The largest batch whose fitted memory stays within ``budget`` (0
    when not even one image fits). A line that does not rise bounds no
    batch: ``main`` reports it as no estimate before asking."""
    if per_image <= 0:
        raise ValueError(f'memory must grow with the batch, got '
                         f'{per_image} bytes per image')
    if fixed + per_image > budget:
        return 0
    return int(math.floor((budget - fixed) / per_image))


def measure_here(args) -> Dict:
    """One warm-up and one measured training step at ``args.measure``
    images in this process; the peaks of the measured step's process."""
    import torch
    from benchmark_train_step import build_train_step
    torch.set_num_threads(args.threads)
    cuda = args.device.startswith('cuda')
    if cuda and args.cap_gb:
        total = torch.cuda.get_device_properties(args.device).total_memory
        torch.cuda.set_per_process_memory_fraction(
            min(1.0, args.cap_gb * GIB / total), args.device)
    out = dict(batch=args.measure, fits=True)
    try:
        options = _options_dict(args.cfg_options)
        step, _ = build_train_step(
            args.config,
            batch_size=args.measure,
            size=args.size,
            device=args.device,
            amp=args.amp,
            cfg_options=options)
        for i in range(2):
            step(args.iter + i)
        if cuda:
            torch.cuda.synchronize()
    except torch.cuda.OutOfMemoryError:
        out['fits'] = False
    if cuda:
        out['reserved'] = torch.cuda.max_memory_reserved()
        out['allocated'] = torch.cuda.max_memory_allocated()
    else:
        # ru_maxrss is in KiB on Linux.
        out['resident'] = resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def _options_dict(options: Sequence[str]) -> Optional[dict]:
    if not options:
        return None
    from mmengine.config import DictAction
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='o')(None, ns, list(options))
    return ns.o


def measure(args, batch: int, cap_gb: Optional[float] = None) -> Dict:
    """Run one measurement in a fresh process and return its figures."""
    cmd = [
        sys.executable,
        osp.abspath(__file__), args.config, '--measure',
        str(batch), '--size',
        str(args.size), '--iter',
        str(args.iter), '--device', args.device, '--threads',
        str(args.threads)
    ]
    if args.amp:
        cmd.append('--amp')
    if cap_gb:
        cmd += ['--cap-gb', str(cap_gb)]
    if args.cfg_options:
        cmd += ['--cfg-options', *args.cfg_options]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    raise RuntimeError(f'the measurement at batch {batch} failed '
                       f'(exit {proc.returncode}):\n{proc.stderr[-3000:]}')


def peak_of(result: Dict) -> float:
    """The figure budgets are checked against: reserved GPU memory, or
    resident memory on the CPU."""
    return float(result.get('reserved', result.get('resident', 0)))


def verified_largest(args,
                     estimate: int,
                     budget: float,
                     max_steps: int = 8) -> Tuple[int, List[int]]:
    """Measured largest batch under a cap of ``budget`` GiB: from the
    estimate, down while it does not fit, else up while the next fits."""
    tried = []
    batch = max(1, estimate)
    fits = measure(args, batch, budget)['fits']
    tried.append(batch)
    step = -1 if not fits else 1
    for _ in range(max_steps):
        nxt = batch + step
        if nxt < 1:
            return 0, tried
        ok = measure(args, nxt, budget)['fits']
        tried.append(nxt)
        if step < 0 and ok:
            return nxt, tried
        if step > 0 and not ok:
            return batch, tried
        batch = nxt
    return batch, tried  # bound reached: a lower bound (printed as such)


def main(argv=None):
    args = parse_args(argv)
    if args.measure is not None:
        print(_MARK + json.dumps(measure_here(args)), flush=True)
        return
    batch, size = config_defaults(args.config, args.cfg_options)
    args.batch_size = args.batch_size or batch
    args.size = args.size or size
    cuda = args.device.startswith('cuda')
    what = 'reserved GPU memory' if cuda else 'peak resident memory (CPU)'
    print(f'{osp.basename(args.config)}: {args.size}^2 crops, '
          f'{args.device}{", amp" if args.amp else ""}; {what}')
    main_run = measure(args, args.batch_size)
    if not main_run['fits']:
        print(f'batch {args.batch_size}: out of memory on this device')
    else:
        extra = (f' (allocated {main_run["allocated"] / GIB:.2f} GiB)'
                 if cuda else '')
        print(f'batch {args.batch_size} (the config\'s): '
              f'{peak_of(main_run) / GIB:.2f} GiB{extra}')
    b1, b2 = args.fit_batches
    runs = {args.batch_size: main_run}
    for b in (b1, b2):
        if b not in runs:
            runs[b] = measure(args, b)
    if not (runs[b1]['fits'] and runs[b2]['fits']):
        print('a fit batch ran out of memory: no estimate')
        return
    fixed, per_image = linear_fit(b1, peak_of(runs[b1]), b2, peak_of(runs[b2]))
    print(f'fit over batches {b1} and {b2}: {fixed / GIB:.2f} GiB + '
          f'{per_image / GIB:.3f} GiB per image')
    if per_image <= 0:
        # Resident memory is noisy at small crops; a line that does not
        # rise bounds nothing.
        print(f'memory did not grow from batch {b1} to {b2}: no estimate '
              '(fit over larger batches or crops: --fit-batches, --size)')
        return
    device_gib = None
    if args.verify:
        import torch
        device_gib = torch.cuda.get_device_properties(
            args.device).total_memory / GIB
    for budget in args.budgets:
        usable = budget - args.context_gib
        est = largest_batch(fixed, per_image, usable * GIB)
        line = (f'largest batch per {budget:g} GiB ({usable:g} GiB for the '
                f'allocator): {est} (estimate' +
                ('' if cuda else ', from CPU resident memory') + ')')
        if args.verify:
            got, tried = verified_largest(args, est, usable)
            line += f'; measured {got} (tried {tried})'
            if usable > device_gib:
                line += (f' (this device has {device_gib:.1f} GiB: the '
                         'measured figure is its own)')
        print(line)


if __name__ == '__main__':
    main()
