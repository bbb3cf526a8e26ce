# Copyright (c) OpenMMLab. All rights reserved.
"""Golden training steps: a behaviour fingerprint of each toy method.

Trains a toy config for a few iterations past all of its gates through
mmengine's Runner, at one thread, from weights that depend only on each
tensor's *checkpoint key* (not on the order modules are built in, so a
refactor that moves modules keeps the same start), and records every
iteration's loss terms (float hex) and a SHA-256 of the final state dict
(keys in their e6331ef names, so a refactor that renames keys is compared
through the segmentor's ``legacy_key``).

The ``*_e6331ef`` records were made on e6331ef (before the redesign); the
ToCo and DuPL records without the suffix on e6331ef plus the redesign's
fidelity corrections alone (the code's gate comparisons, DuPL's cosine
eps), the code the corrected toy results were trained with.

Record (once, on the reference code)::

    python tests/golden/golden_steps.py --record tests/golden/golden_steps.json

``tests/test_models/test_golden_steps.py`` replays every case and requires
bit-identical losses and weights.

Bit-identical holds for one CPU's kernels: oneDNN/MKL choose other kernels
(other rounding) on other CPUs (e.g. with AMX), so every case can differ by
an ulp from the first step on. Records of another kind of CPU are kept in
``golden_steps.<fingerprint>.json`` (:func:`kernel_fingerprint`), recorded
there from a commit whose behaviour the default records proved (session 9:
6e74e6d on a Sapphire Rapids Xeon); the test uses them when the fingerprint
matches, else the default file, whose own kind is ``DEFAULT_FINGERPRINT``
(identified later, by a machine that replays it bit for bit). On a CPU
with no records of its own (CI
machines vary) the replay is compared within tolerances instead, measured
between the recorded kinds (``test_golden_steps.py``); record its
file to make it exact::

    python tests/golden/golden_steps.py --record \
        tests/golden/golden_steps.$(python tests/golden/golden_steps.py \
        --fingerprint).json
"""
import argparse
import hashlib
import json
import os.path as osp
import random
import sys
import tempfile
import zlib
from typing import Callable, Dict, List, Optional, Tuple

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import mmseg_wsss  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmseg_wsss.utils import drop_pretrained  # noqa: E402
from mmseg_wsss.utils import kernel_fingerprint  # noqa: E402
from mmseg_wsss.utils import set_data_root, sync_num_classes  # noqa: E402

MAX_ITERS = 24
BATCH_SIZE = 2
HOOK_NAME = 'WSSSTestGoldenStepsHook'

# Each case: a toy config and the overrides that put every gate of the
# method inside the first few iterations (the last gate at iteration 4, so
# 20 of the 24 steps run with everything on). The override *paths* follow
# the config layout of the code under test; their meaning must not change.
CASES = {
    'cam_resnet_toy':
    dict(config='configs/cam_baseline/cam_resnet_toy.py', options={}),
    'cam_vit_toy':
    dict(config='configs/cam_baseline/cam_vit_toy.py', options={}),
    'single_stage_toy':
    dict(
        config='configs/single_stage/single_stage_toy.py',
        options={'model.train_cfg.seg_start_iter': 4}),
    'toco_toy':
    dict(
        config='configs/toco/toco-noctc_toy.py',
        options={
            'model.train_cfg.ptc_start_iter': 1,
            'model.train_cfg.seg_start_iter': 2,
            'model.train_cfg.aux_label_end_iter': 4,
        }),
    'dupl_toy':
    dict(
        config='configs/dupl/dupl_toy.py',
        options={
            'model.train_cfg.dis_start_iter': 1,
            'model.train_cfg.ptc_start_iter': 1,
            'model.train_cfg.seg_start_iter': 2,
            'model.train_cfg.aux_label_end_iter': 3,
            'model.train_cfg.filter_start_iter': 4,
            'model.train_cfg.consistency_start_iter': 4,
            'model.train_cfg.dynamic_thr.warmup_iters': 2,
            'model.train_cfg.dynamic_thr.max_iters': MAX_ITERS,
        }),
}
# e6331ef's behaviour before the fidelity corrections of the redesign (its
# gates compared n_iter >= start; DuPL's cosine eps was 1e-8): the same
# cases with those switches, pinned to the records made on e6331ef itself.
CASES['toco_toy_e6331ef'] = dict(
    config=CASES['toco_toy']['config'],
    options={
        **CASES['toco_toy']['options'], 'model.train_cfg.gate_rule': 'from'
    })
CASES['dupl_toy_e6331ef'] = dict(
    config=CASES['dupl_toy']['config'],
    options={
        **CASES['dupl_toy']['options'], 'model.train_cfg.gate_rule': 'from',
        'model.loss_dis.cos_eps': 1e-8
    })


def legacy_key_of(model: torch.nn.Module) -> Callable[[str], str]:
    """The e6331ef name of each state-dict key of ``model`` (the segmentor
    maps the keys it moved, :meth:`WSSSSegmentor.legacy_key`)."""
    return getattr(type(model), 'legacy_key', lambda key: key)


def keyed_init(model: torch.nn.Module,
               key_of: Optional[Callable[[str], str]] = None) -> None:
    """Fill every floating parameter from a generator seeded by its key.

    Norm layers get weight 1 + 0.1 N(0, 1) and bias 0.1 N(0, 1); other
    tensors of rank >= 2 N(0, 1) / sqrt(fan_in), rank-1 ones 0.02 N(0, 1).
    Buffers keep their (deterministic) constructed values.
    """
    key_of = key_of or legacy_key_of(model)
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm,
                  torch.nn.GroupNorm)
    with torch.no_grad():
        for mod_name, module in model.named_modules():
            is_norm = isinstance(module, norm_types)
            for p_name, param in module.named_parameters(recurse=False):
                if not param.is_floating_point():
                    continue
                key = key_of(f'{mod_name}.{p_name}' if mod_name else p_name)
                gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
                noise = torch.randn(
                    param.shape, generator=gen, dtype=torch.float32)
                if is_norm:
                    value = (1. + 0.1 * noise) if p_name == 'weight' \
                        else 0.1 * noise
                elif param.dim() >= 2:
                    value = noise / (param[0].numel()**0.5)
                else:
                    value = 0.02 * noise
                param.copy_(value.to(param.dtype))


def state_sha256(model: torch.nn.Module,
                 key_of: Optional[Callable[[str], str]] = None) -> str:
    """SHA-256 over the state dict, keys (legacy names) sorted."""
    key_of = key_of or legacy_key_of(model)
    state = {key_of(k): v for k, v in model.state_dict().items()}
    sha = hashlib.sha256()
    for key in sorted(state):
        sha.update(key.encode())
        sha.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


class _GoldenHook(Hook):
    priority = 'VERY_LOW'

    def __init__(self, record: dict) -> None:
        self.record = record

    def before_train(self, runner) -> None:
        keyed_init(runner.model)
        # Whatever the build and init consumed, the steps start from here.
        torch.manual_seed(1)
        np.random.seed(1)
        random.seed(1)
        self.record['init_sha256'] = state_sha256(runner.model)
        self.record['losses'] = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self.record['losses'].append({
            k: float(v).hex()
            for k, v in outputs.items() if k.startswith('loss')
        })

    def after_train(self, runner) -> None:
        self.record['final_sha256'] = state_sha256(runner.model)


def run_case(name: str,
             data_root: str,
             work_dir: Optional[str] = None,
             extra_options: Optional[dict] = None) -> Dict:
    """Train one case and return its record (losses, weight hashes)."""
    case = CASES[name]
    cfg = Config.fromfile(osp.join(REPO_ROOT, case['config']))
    options = dict(case['options'])
    options.update(extra_options or {})
    cfg.merge_from_dict(options)
    set_data_root(cfg, data_root)
    sync_num_classes(cfg)
    drop_pretrained(cfg.model)
    cfg.launcher = 'none'
    cfg.work_dir = work_dir or tempfile.mkdtemp(prefix=f'golden_{name}_')
    cfg.train_dataloader.update(
        batch_size=BATCH_SIZE, num_workers=0, persistent_workers=False)
    cfg.train_cfg.update(max_iters=MAX_ITERS, val_interval=10**6)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler = [
        dict(
            type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)
    ]
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.logger.interval = MAX_ITERS
    cfg.default_hooks.checkpoint.update(interval=10**6, save_last=False)
    cfg.default_hooks.pop('visualization', None)
    cfg.custom_hooks = [
        h for h in (cfg.get('custom_hooks') or [])
        if h['type'] != 'BestBranchHook'
    ]
    cfg.log_level = 'WARNING'
    record = dict(
        case=name,
        config=case['config'],
        options=options,
        max_iters=MAX_ITERS,
        batch_size=BATCH_SIZE)
    hook_record = {}
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_GoldenHook(hook_record), 'VERY_LOW')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner.train()
    finally:
        torch.set_num_threads(threads)
    record.update(hook_record)
    return record


# The kind of CPU the default records (``golden_steps.json``) were made on.
# That machine was not fingerprinted at the time; an AMD EPYC with AVX-512
# (session 20) replays all of its cases bit-identically, losses of every
# iteration and final weights, so its key names the default file's kernels.
DEFAULT_FINGERPRINT = 'avx512-avx2-1dc44468ac2b'


def records_path(default: str,
                 fingerprint: Optional[str] = None) -> Tuple[str, bool]:
    """The records for this machine and whether they are its own kernels'.

    ``golden_steps.<fingerprint>.json`` beside ``default`` if it exists,
    else ``default``; ``exact`` is True when the file was recorded with
    this machine's kernels (bit identity is then required: the fingerprint
    names a file of its own or is :data:`DEFAULT_FINGERPRINT`), False on a
    CPU without records of its own (the test then compares within
    tolerances measured between recorded kinds of CPU).

    Args:
        default (str): Path of the default records.
        fingerprint (str, optional): A :func:`kernel_fingerprint`; this
            machine's when None.
    """
    if fingerprint is None:
        fingerprint = kernel_fingerprint()
    root, ext = osp.splitext(default)
    path = f'{root}.{fingerprint}{ext}'
    if osp.isfile(path):
        return path, True
    return default, fingerprint == DEFAULT_FINGERPRINT


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if '--fingerprint' in argv:
        print(kernel_fingerprint())
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--record', required=True, help='output JSON')
    parser.add_argument('--data-root', help='toy data (default: generated)')
    parser.add_argument('--cases', nargs='+', default=list(CASES))
    args = parser.parse_args(argv)
    data_root = args.data_root
    if data_root is None:
        data_root = osp.join(tempfile.mkdtemp(prefix='golden_toy_'), 'toy48')
        generate_golden_toy(data_root)
    records = {name: run_case(name, data_root) for name in args.cases}
    with open(args.record, 'w') as f:
        json.dump(records, f, indent=1, sort_keys=True)
    for name, rec in records.items():
        print(name, rec['final_sha256'][:16], len(rec['losses']))
    return 0


def generate_golden_toy(root: str) -> None:
    """The suite's ``toy_root`` data: 48 px, 32 train + 8 val, seed 0."""
    from mmseg_wsss_light.toy_generator import generate_dataset
    generate_dataset(root, num_train=32, num_val=8, size=48, seed=0, workers=1)


__all__ = [
    'CASES', 'DEFAULT_FINGERPRINT', 'run_case', 'keyed_init', 'state_sha256',
    'kernel_fingerprint', 'records_path'
]

if __name__ == '__main__':
    sys.exit(main())
