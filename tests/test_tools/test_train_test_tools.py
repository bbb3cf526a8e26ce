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
from mmseg_wsss.utils import kernel_fingerprint
from tool_runs import CONFIG, FAST, run_python, train

_run, _train = run_python, train


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
    assert f'Resuming from {ckpt}' in log, log[-3000:]
    assert f'Iter(train) [{done + 1}/{done + 2}]' in log, log[-3000:]
    assert f'CPU kernel fingerprint: {kernel_fingerprint()}' in log

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

    # --crf refines with the config's CRF (model.test_cfg.crf) in workers
    # (WSSSTestLoop); --out and --show-dir get the refined predictions.
    crf_out, show_dir = str(tmp_path / 'pred_crf'), str(tmp_path / 'show')
    crf = _run([
        'tools/test.py', CONFIG,
        osp.join(work_dir, f'iter_{done + 2}.pth'), '--data-root', toy_root,
        '--crf', '--crf-workers', '2', '--work-dir',
        str(tmp_path / 'test_crf'), '--out', crf_out, '--show-dir', show_dir,
        '--cfg-options', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ])  # --show-dir draws every image (mmseg's default interval is 50)
    assert crf.returncode == 0, crf.stderr[-3000:]
    with open(osp.join(str(tmp_path / 'test_crf'), 'metrics.json')) as f:
        crf_miou = json.load(f)['mIoU']
    assert 0 <= crf_miou <= 100
    assert sorted(os.listdir(crf_out)) == pngs
    shown = glob.glob(osp.join(show_dir, '**', '*.png'), recursive=True)
    assert len(shown) == len(val), shown
    assert 'WSSSTestLoop' in crf.stdout + crf.stderr
    # The --out PNGs are what each run scored (tests/test_engine checks that
    # the loop's are exactly the DenseCRF labels): their pixel accuracy
    # against the ground truth is the run's aAcc.
    import numpy as np
    from PIL import Image

    def accuracy(pred_dir):
        correct = valid = 0
        for name in pngs:
            pred = np.array(Image.open(osp.join(pred_dir, name)))
            gt = np.array(
                Image.open(osp.join(toy_root, 'SegmentationClass', name)))
            mask = gt != 255
            correct += int((pred == gt)[mask].sum())
            valid += int(mask.sum())
        return 100 * correct / valid

    for pred_dir, run_dir in ((out_dir, 'test'), (crf_out, 'test_crf')):
        with open(osp.join(str(tmp_path / run_dir), 'metrics.json')) as f:
            assert accuracy(pred_dir) == pytest.approx(
                json.load(f)['aAcc'], abs=0.006), run_dir


def test_enable_crf(toy_root, tmp_path):
    import importlib.util

    from mmengine.config import Config
    spec = importlib.util.spec_from_file_location(
        'wsss_tools_test', osp.join(REPO_ROOT, 'tools', 'test.py'))
    tools_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools_test)
    enable_crf = tools_test.enable_crf
    cfg = Config.fromfile(CONFIG)
    evaluator = cfg.test_evaluator.to_dict()
    enable_crf(cfg, workers=3)
    assert cfg.model.test_cfg.crf == dict(
        preset='toco_cam',
        xy_scale=96 / 448,
        prob_mode='normalize',
        enable=True,
        workers=3)
    assert cfg.model.test_cfg.scales == (1.0, )  # the rest stays
    assert cfg.test_cfg.type == 'WSSSTestLoop'
    assert cfg.test_evaluator.to_dict() == evaluator  # WSSSIoUMetric
    # the post-processor of the enabled config
    from mmseg_wsss.models.postprocess import CRFPostProcessor
    post = CRFPostProcessor.build(cfg.model.test_cfg.crf)
    assert post.workers == 3 and post.prob_mode == 'normalize'
    # --pseudo-labels keeps the CRF
    cfg = Config.fromfile(CONFIG)
    tools_test.use_training_split(cfg, 'train')
    enable_crf(cfg)
    assert cfg.model.test_cfg.cls_source == 'gt'
    assert cfg.model.test_cfg.crf.enable is True
    assert 'workers' not in cfg.model.test_cfg.crf
    cfg.model.test_cfg.pop('crf')
    with pytest.raises(ValueError, match='test_cfg.crf'):
        enable_crf(cfg)
