# Copyright (c) OpenMMLab. All rights reserved.
"""End to end through the tools: train, kill, --resume, test --out."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

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


def _run(args, timeout=300, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable] + args,
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout,
                          **kwargs)


def _train(work_dir, data_root, max_iters, *extra):
    return _run([
        'tools/train.py', CONFIG, '--data-root', data_root, '--work-dir',
        work_dir, *extra, '--cfg-options', *FAST,
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}'
    ])


def _scalars(work_dir):
    """{iter: lr} logged by mmengine, over all runs in work_dir."""
    lrs = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'lr' in rec:
                    lrs[rec['iter']] = rec['lr']
    return lrs


def test_kill_and_resume(toy_root, tmp_path):
    work_dir = str(tmp_path / 'killed')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([
        sys.executable, 'tools/train.py', CONFIG, '--data-root', toy_root,
        '--work-dir', work_dir, '--cfg-options', *FAST,
        'train_cfg.max_iters=1000', 'train_cfg.val_interval=1000'
    ],
                            cwd=REPO_ROOT,
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not osp.exists(osp.join(work_dir, 'last_checkpoint')):
            assert proc.poll() is None, 'training died before a checkpoint'
            assert time.time() < deadline, 'no checkpoint in time'
            time.sleep(0.2)
        time.sleep(0.5)  # let it train past the checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    done = int(osp.basename(ckpt)[len('iter_'):-len('.pth')])
    assert done % 3 == 0 and done >= 3

    resumed = _train(work_dir, toy_root, done + 2, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f'resumed checkpoint from {ckpt}' in log or \
        f'Auto resumed from the latest checkpoint {ckpt}' in log, log[-3000:]
    assert f'Iter(train) [{done + 1}/{done + 2}]' in log, log[-3000:]

    reference_dir = str(tmp_path / 'reference')
    ref = _train(reference_dir, toy_root, done + 2)
    assert ref.returncode == 0, ref.stderr[-3000:]
    ref_lr, res_lr = _scalars(reference_dir), _scalars(work_dir)
    for it in (done + 1, done + 2):
        assert res_lr[it] == pytest.approx(ref_lr[it], rel=1e-9), it

    # tools/test.py CKPT --out DIR writes PNG predictions and prints mIoU.
    out_dir = str(tmp_path / 'pred')
    test = _run([
        'tools/test.py', CONFIG,
        osp.join(work_dir, f'iter_{done + 2}.pth'), '--data-root', toy_root,
        '--work-dir',
        str(tmp_path / 'test'), '--out', out_dir, '--cfg-options',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ])
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'mIoU' in test.stdout
    with open(osp.join(toy_root, 'ImageSets', 'Segmentation',
                       'val.txt')) as f:
        val = [line.strip() for line in f if line.strip()]
    pngs = sorted(os.listdir(out_dir))
    assert pngs == sorted(n + '.png' for n in val)
    with open(osp.join(str(tmp_path / 'test'), 'metrics.json')) as f:
        assert 0 <= json.load(f)['mIoU'] <= 100

    # --crf refines with the config's CRF (model.test_cfg.crf) in workers.
    crf = _run([
        'tools/test.py', CONFIG,
        osp.join(work_dir, f'iter_{done + 2}.pth'), '--data-root', toy_root,
        '--crf', '--crf-workers', '2', '--work-dir',
        str(tmp_path / 'test_crf'), '--cfg-options',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ])
    assert crf.returncode == 0, crf.stderr[-3000:]
    with open(osp.join(str(tmp_path / 'test_crf'), 'metrics.json')) as f:
        assert 0 <= json.load(f)['mIoU'] <= 100


def test_crf_needs_config_entry(toy_root, tmp_path):
    import importlib.util

    from mmengine.config import Config
    spec = importlib.util.spec_from_file_location(
        'wsss_tools_test', osp.join(REPO_ROOT, 'tools', 'test.py'))
    tools_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools_test)
    crf_evaluator = tools_test.crf_evaluator
    cfg = Config.fromfile(CONFIG)
    metric = crf_evaluator(cfg, num_workers=3)
    assert metric['type'] == 'CRFIoUMetric'
    assert metric['num_workers'] == 3
    assert metric['prob_mode'] == 'normalize'
    assert metric['crf'] == dict(preset='toco_cam', xy_scale=96 / 448)
    cfg.model.test_cfg.pop('crf')
    with pytest.raises(ValueError, match='test_cfg.crf'):
        crf_evaluator(cfg)
