# Copyright (c) OpenMMLab. All rights reserved.
"""Distributed training on the CPU (gloo): it runs, and it is equivalent.

Both tests launch two processes with ``torch.distributed.run``; they need no
GPU and run on 2 CPU cores in well under a minute each.
"""
import glob
import json
import math
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_vit_toy.py')
PROBE = osp.join(REPO_ROOT, 'tests', 'test_tools', 'dist_loss_probe.py')
TIMEOUT = 180


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _env(**extra):
    env = dict(os.environ, PYTHONUNBUFFERED='1', **extra)
    # A stale rendezvous from the calling environment must not leak in.
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT'):
        env.pop(key, None)
    return env


def _run(cmd, **extra_env):
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{cmd} failed:\n{log[-5000:]}'
    return log


def _probe(out_dir, data_root, batch_size, nproc, pretrain):
    args = [
        PROBE, CONFIG, '--data-root', data_root, '--out-dir', out_dir,
        '--batch-size',
        str(batch_size), '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={pretrain}'
    ]
    if nproc == 1:
        cmd = [sys.executable] + args
    else:
        cmd = [
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={nproc}', f'--master_port={_free_port()}'
        ] + args + ['--launcher', 'pytorch']
    log = _run(cmd)
    records = []
    for rank in range(nproc):
        path = osp.join(out_dir, f'rank{rank}.json')
        assert osp.exists(path), f'rank {rank} wrote nothing:\n{log[-5000:]}'
        with open(path) as f:
            records.append(json.load(f))
    assert sorted(
        os.listdir(out_dir)) == sorted([f'rank{r}.json'
                                        for r in range(nproc)] + ['work_dir'])
    return records, log


def _assert_grads_close(actual, expected, rtol=1e-4):
    """Per-parameter [norm, sum] of two gradients agree."""
    assert actual.keys() == expected.keys()
    max_norm = max(g[0] for g in expected.values() if g is not None)
    assert max_norm > 0
    for name, exp in expected.items():
        act = actual[name]
        assert (act is None) == (exp is None), name
        if exp is None:
            continue
        tol = dict(rel=rtol, abs=1e-7 * max_norm)
        assert act[0] == pytest.approx(exp[0], **tol), (name, act, exp)
        # Sums are often ~0 (LayerNorm invariances): an absolute tolerance
        # scaled by the gradient's size.
        assert act[1] == pytest.approx(
            exp[1], rel=rtol, abs=1e-5 * max(exp[0], 1e-3 * max_norm)), \
            (name, act, exp)


def test_dist_train_equivalent_to_single_process(toy_root, toy_vit_pretrain,
                                                 tmp_path):
    """2 processes x batch 2 == 1 process x batch 4 in the first iteration.

    No random augmentation, no shuffling, the same seed: the mean of the two
    ranks' losses (each a mean over its batch) is the loss of the 4-image
    batch, and DDP's averaged gradient is the 4-image batch's gradient.
    """
    single, _ = _probe(
        str(tmp_path / 'single'), toy_root, 4, 1, toy_vit_pretrain)
    dist, log = _probe(
        str(tmp_path / 'dist'), toy_root, 2, 2, toy_vit_pretrain)
    (one, ) = single

    # The launch really was 2-process gloo DDP.
    assert 'No GPU: distributed CPU training with gloo' in log, log[-3000:]
    assert one['world_size'] == 1 and one['batch_size'] == 4
    assert one['model_wrapper'] != 'MMDistributedDataParallel'
    for rank, rec in enumerate(dist):
        assert rec['rank'] == rank
        assert rec['world_size'] == 2 and rec['batch_size'] == 2
        assert rec['model_wrapper'] == 'MMDistributedDataParallel'
        assert len(rec['img_paths']) == 2

    # Same images: the ranks split the single process's batch (interleaved,
    # DistributedSampler style), without overlap.
    assert len(one['img_paths']) == 4
    assert len(set(one['img_paths'])) == 4
    assert dist[0]['img_paths'] == one['img_paths'][0::2]
    assert dist[1]['img_paths'] == one['img_paths'][1::2]
    assert sorted(dist[0]['img_paths'] + dist[1]['img_paths']) == sorted(
        one['img_paths'])

    # Same initial weights on every rank and in the single process (weights
    # are initialised after the DDP wrapper's broadcast, so the seed must
    # make them identical).
    assert dist[0]['init_sha256'] == dist[1]['init_sha256'] == \
        one['init_sha256']

    # The loss: mean over ranks of per-rank batch means == 4-image mean.
    for rec in single + dist:
        assert math.isfinite(rec['loss']) and rec['loss'] > 0
        assert rec['loss'] == pytest.approx(
            sum(rec['loss_terms'].values()), rel=1e-6)
    dist_mean = (dist[0]['loss'] + dist[1]['loss']) / 2
    # The ranks saw different images: the comparison is not trivial.
    assert dist[0]['loss'] != pytest.approx(dist[1]['loss'], rel=1e-4)
    assert dist_mean == pytest.approx(one['loss'], rel=1e-5), \
        (one['loss'], dist[0]['loss'], dist[1]['loss'])
    for term, value in one['loss_terms'].items():
        assert (dist[0]['loss_terms'][term] +
                dist[1]['loss_terms'][term]) / 2 == pytest.approx(
                    value, rel=1e-5), term

    # The gradient the optimizer applied: all-reduced (identical on both
    # ranks) and equal to the single process's gradient of the 4 images.
    _assert_grads_close(dist[1]['grads'], dist[0]['grads'], rtol=1e-6)
    _assert_grads_close(dist[0]['grads'], one['grads'])


def test_dist_train_sh_smoke(toy_root, toy_vit_pretrain, tmp_path):
    """tools/dist_train.sh CONFIG 2 trains with gloo on a CPU-only machine."""
    work_dir = str(tmp_path / 'work')
    log = _run(
        [
            'bash', 'tools/dist_train.sh', CONFIG, '2', '--data-root',
            toy_root, '--work-dir', work_dir, '--cfg-options',
            'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=2',
            f'model.backbone.init_cfg.checkpoint={toy_vit_pretrain}'
        ],
        # dist_train.sh runs `python` unless PYTHON says otherwise.
        PYTHON=sys.executable,
        PORT=str(_free_port()))

    for rank in (0, 1):
        assert ('No GPU: distributed CPU training with gloo, rank '
                f'{rank} of 2') in log, log[-5000:]
    assert 'Total batch: 2 process(es) x 2 = 4' in log, log[-5000:]
    assert f'from path: {toy_vit_pretrain}' in log, log[-5000:]
    for it in range(1, 5):
        assert f'Iter(train) [{it}/4]' in log, log[-5000:]
    assert 'Iter(train) [5/4]' not in log
    assert 'mIoU' in log  # validation after iteration 4, on both ranks' data

    # Checkpoints of the unwrapped model, written once (by rank 0).
    assert osp.exists(osp.join(work_dir, 'iter_2.pth'))
    ckpt = osp.join(work_dir, 'iter_4.pth')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == ckpt
    import torch
    state = torch.load(ckpt, map_location='cpu')
    assert state['meta']['iter'] == 4
    keys = list(state['state_dict'])
    assert keys and not any(k.startswith('module.') for k in keys)
    assert any(k.startswith('backbone.') for k in keys)
    assert any(k.startswith('cls_head.') for k in keys)
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1, logs  # one run directory: rank 0 logs to file


# Gates moved inside a 4-iteration run: (cfg-options, log lines that prove
# the gated losses ran).
METHODS = {
    'toco': ('configs/toco/toco_toy.py', ['model.train_cfg.seg_start_iter=2'],
             ['loss_seg']),
    'dupl': ('configs/dupl/dupl_toy.py', [
        'model.train_cfg.seg_start_iter=1',
        'model.train_cfg.filter_start_iter=2',
        'model.train_cfg.consistency_start_iter=2',
        'model.train_cfg.dynamic_thr.warmup_iters=1',
        'model.train_cfg.dynamic_thr.max_iters=4'
    ], ['loss_seg_2', 'loss_dis']),
    'single_stage': ('configs/single_stage/single_stage_toy.py',
                     ['model.train_cfg.seg_start_iter=2'], []),
    # FSR: random masking, then uncertainty-guided from iteration 2; the
    # teacher's EMA and the centres across the 2 ranks.
    'fsr': ('configs/fsr/fsr_toy.py', [
        'model.train_cfg.seg_start_iter=2',
        'model.train_cfg.masking.random_iters=2'
    ], ['loss_seg', 'loss_fsr_class', 'loss_fsr_patch']),
    # RRM: the reliable label's CRFs in every iteration. ASDT: the student
    # alternates from iteration 1 with a period of 2 (T_h 1): the seg
    # teacher's CRF label at iterations 1 and 3, the class teacher's at 0
    # and 2. Both from scratch here (no toy CAM checkpoint).
    'rrm': ('configs/rrm/rrm_toy.py', ['load_from=None'],
            ['loss_cls', 'loss_seg', 'time_crf']),
    'asdt': ('configs/asdt/asdt_toy.py', [
        'load_from=None', 'model.train_cfg.alternation.start_iter=1',
        'model.train_cfg.alternation.period=2',
        'model.train_cfg.alternation.tau=2'
    ], ['loss_seg', 'loss_seg_student']),
    # AGEN: every AGM's seeding loss and the boundary loss's CRF each step
    # (a 2-process run also checks the shared AGM layers under DDP).
    'agen': ('configs/agen/agen_toy.py', [],
             ['loss_cls_agm3', 'loss_seed_agm5', 'loss_boundary']),
}
# Gated losses that are logged but may be 0 this early (the consistency
# loss needs weak-view confidences above 0.9).
# The energy loss is ~1e-5 this early: logged, rounded to 0.0000 at times.
# ToCo's CTC is ~1e-5 when no local crop is negative (all ROI mass).
LOGGED = {
    'toco': ['loss_energy', 'loss_ctc'],
    'dupl': ['loss_consist_1', 'loss_consist_2'],
    'fsr': ['loss_energy', 'loss_ptc'],
    'rrm': ['loss_energy'],
    'asdt': ['loss_energy', 'loss_energy_student', 'pw_high'],
    'agen': ['loss_seed', 'loss_seed_agm4', 'loss_seed_agm3', 'time_crf']
}
# 1Stage drops images whose pseudo label misses a class: an untrained model's
# may all be dropped (loss 0) after 2 iterations.
LOGGED['single_stage'] = ['loss_seg']


@pytest.mark.parametrize('method', sorted(METHODS))
def test_method_dist_train_across_gates_then_test_with_crf(
        method, toy_root, toy_vit_pretrain, tmp_path):
    """Each method trains with 2 gloo processes past its gates, validates,
    and its checkpoint tests with --crf."""
    import torch
    config, gates, gated_losses = METHODS[method]
    # The ViT methods start from the toy pretraining (a stand-in here).
    backbone = {
        'toco': 'model.network',
        'dupl': 'model.network',
        'fsr': 'model.network'
    }
    if method in backbone:
        gates = gates + [
            f'{backbone[method]}.backbone.init_cfg.checkpoint='
            f'{toy_vit_pretrain}'
        ]
    work_dir = str(tmp_path / 'work')
    log = _run([
        'bash', 'tools/dist_train.sh', config, '2', '--data-root', toy_root,
        '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_iters=4',
        'train_cfg.val_interval=4', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2', *gates
    ],
               PYTHON=sys.executable,
               PORT=str(_free_port()),
               OMP_NUM_THREADS='1')
    assert 'Iter(train) [4/4]' in log, log[-5000:]
    last = log[log.index('Iter(train) [4/4]'):].splitlines()[0]
    for name in gated_losses:
        value = float(last.split(f'{name}: ')[1].split()[0])
        assert value != 0, (name, last)
    for name in LOGGED[method]:
        assert f'{name}: ' in last, (name, last)
    if method == 'asdt':
        # The alternate signal of each iteration (0-based 0..3 -> lines
        # 1..4): class, seg, class, seg teacher.
        lines = [
            log[log.index(f'Iter(train) [{i}/4]'):].splitlines()[0]
            for i in range(1, 5)
        ]
        highs = [float(x.split('pw_high: ')[1].split()[0]) for x in lines]
        assert highs == [1., 0., 1., 0.], highs
    ckpt = osp.join(work_dir, 'iter_4.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 4
    if method == 'dupl':
        # Both students validated; the better one on val is recorded in the
        # re-saved final checkpoint (meta and buffer) for the opt-in
        # branch='best'; no checkpoint is selected on the val labels.
        assert 'branch1_mIoU' in log and 'branch2_mIoU' in log
        best = state['meta']['best_branch']
        assert best in (1, 2)
        assert int(state['state_dict']['best_branch']) == best
        assert not glob.glob(osp.join(work_dir, 'best_*.pth'))

    test_log = _run([
        sys.executable, 'tools/test.py', config, ckpt, '--data-root', toy_root,
        '--work-dir',
        str(tmp_path / 'test'), '--crf', '--crf-workers', '1', '--cfg-options',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ],
                    OMP_NUM_THREADS='1')
    with open(tmp_path / 'test' / 'metrics.json') as f:
        metrics = json.load(f)
    assert 0 <= metrics['mIoU'] <= 100, test_log[-3000:]
    if method == 'dupl':
        # label-free by default: both students' probabilities averaged
        assert 'testing with branch mean' in test_log, test_log[-3000:]
