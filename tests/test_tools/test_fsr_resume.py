# Copyright (c) OpenMMLab. All rights reserved.
"""FSR's EMA teacher through tools/train.py --resume: the checkpoint holds
the teacher, and the resumed run continues its EMA from it exactly."""
import os.path as osp

import torch

from conftest import REPO_ROOT
from tool_runs import run_python

CONFIG = osp.join(REPO_ROOT, 'configs', 'fsr', 'fsr_toy.py')
OPTIONS = [
    'train_dataloader.batch_size=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.interval=2',
    'train_cfg.val_interval=100',
    'randomness.seed=0',
    # A fast-moving teacher, so the test sees the update.
    'model.train_cfg.teacher.momentum=0.5'
]


def _train(work_dir, data_root, pretrain, max_iters, *extra):
    proc = run_python([
        'tools/train.py', CONFIG, '--data-root', data_root, '--work-dir',
        work_dir, *extra, '--cfg-options', *OPTIONS,
        f'train_cfg.max_iters={max_iters}',
        f'model.network.backbone.init_cfg.checkpoint={pretrain}'
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _state(path):
    return torch.load(
        path, map_location='cpu', weights_only=True)['state_dict']


def test_resume_continues_the_teacher_exactly(toy_root, toy_vit_pretrain,
                                              tmp_path):
    work_dir = str(tmp_path / 'work')
    _train(work_dir, toy_root, toy_vit_pretrain, 2)
    two = _state(osp.join(work_dir, 'iter_2.pth'))
    assert int(two['teacher.synced']) == 1
    assert int(two['teacher_iter']) == 1  # updated at the start of iter 1
    log = _train(work_dir, toy_root, toy_vit_pretrain, 3, '--resume')
    assert 'Resuming from' in log, log[-3000:]
    three = _state(osp.join(work_dir, 'iter_3.pth'))
    assert int(three['teacher_iter']) == 2
    # Iteration 2 (the first after resuming) applies the update of
    # iteration 1 to the checkpoint's teacher with the checkpoint's student:
    # t = m * t + (1 - m) * s, m of the cosine 0.5 -> 1.0 over fsr_iters
    # (3,000: the model's settings do not follow train_cfg.max_iters).
    from mmseg_wsss.models.wsss import ema_momentum
    m = ema_momentum(1, start=0.5, end=1.0, max_iters=3000, schedule='cosine')
    checked = 0
    for key, value in three.items():
        if not key.startswith('teacher.module.') or \
                not value.is_floating_point():
            continue
        student = two['network.' + key[len('teacher.module.'):]]
        teacher = two[key]
        if torch.equal(student, teacher):
            continue  # frozen or never trained (e.g. the frozen g)
        expected = teacher * m + student * (1 - m)
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
        checked += 1
    assert checked > 50
