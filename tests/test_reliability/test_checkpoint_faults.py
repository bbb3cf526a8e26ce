# Copyright (c) OpenMMLab. All rights reserved.
"""Nothing lost: a kill or a full disk during a save, a damaged checkpoint.

Each fault is injected into a real toy training (tools/train.py, cam_resnet
toy config, checkpoints every 3 iterations); ``--resume`` must then continue
from the last good checkpoint and end *bit-exactly* where an uninterrupted
run ends.
"""
import glob
import os
import os.path as osp
import shutil

import pytest
import torch

from tool_runs import run_python, train, train_args

FAULT = osp.join('tests', 'test_reliability', 'fault_train.py')


@pytest.fixture(scope='module')
def reference(toy_root, tmp_path_factory):
    """An uninterrupted 6-iteration run (checkpoints at 3 and 6)."""
    work_dir = str(tmp_path_factory.mktemp('reference'))
    ref = train(work_dir, toy_root, 6)
    assert ref.returncode == 0, ref.stderr[-3000:]
    return work_dir


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_same_training_state(path, ref_path):
    got, ref = _load(path), _load(ref_path)
    assert got['meta']['iter'] == ref['meta']['iter']
    assert got['state_dict'].keys() == ref['state_dict'].keys()
    for key, value in ref['state_dict'].items():
        assert torch.equal(got['state_dict'][key], value), key
    for group, ref_group in zip(got['optimizer']['state'].values(),
                                ref['optimizer']['state'].values()):
        for name, value in ref_group.items():
            assert torch.equal(
                torch.as_tensor(group[name]), torch.as_tensor(value)), name


@pytest.mark.parametrize('mode', ['enospc', 'kill'])
def test_fault_during_save_loses_nothing(mode, toy_root, tmp_path, reference):
    work_dir = str(tmp_path / mode)
    # The second save (iteration 6) fails half-way.
    faulty = run_python([FAULT, mode, '2'] + train_args(work_dir, toy_root, 6))
    assert faulty.returncode != 0
    if mode == 'enospc':
        assert 'No space left on device' in faulty.stderr
    # No half-written checkpoint under a real name; the last good one stays.
    names = sorted(os.listdir(work_dir))
    assert 'iter_3.pth' in names and 'iter_6.pth' not in names, names
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work_dir, 'iter_3.pth')
    partial = glob.glob(osp.join(work_dir, '.iter_6.pth.*.tmp'))
    # ENOSPC: the save cleans up; a killed process cannot.
    assert len(partial) == (1 if mode == 'kill' else 0), names

    resumed = train(work_dir, toy_root, 6, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f'Resuming from {osp.join(work_dir, "iter_3.pth")}' in log
    assert not glob.glob(osp.join(work_dir, '.*.tmp'))
    assert_same_training_state(
        osp.join(work_dir, 'iter_6.pth'), osp.join(reference, 'iter_6.pth'))


def test_truncated_latest_checkpoint_falls_back(toy_root, tmp_path, reference):
    work_dir = str(tmp_path / 'truncated')
    os.makedirs(work_dir)
    shutil.copy(osp.join(reference, 'iter_3.pth'), work_dir)
    with open(osp.join(reference, 'iter_6.pth'), 'rb') as f:
        data = f.read()
    latest = osp.join(work_dir, 'iter_6.pth')
    with open(latest, 'wb') as f:
        f.write(data[:len(data) * 2 // 3])
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(latest)

    resumed = train(work_dir, toy_root, 6, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f'Checkpoint {latest} is damaged' in log, log[-3000:]
    assert 'Falling back to the newest intact checkpoint: ' + osp.join(
        work_dir, 'iter_3.pth') in log
    assert_same_training_state(latest, osp.join(reference, 'iter_6.pth'))


def test_resume_with_nothing_to_resume_is_an_error(toy_root, tmp_path):
    work_dir = str(tmp_path / 'mistyped')
    result = train(work_dir, toy_root, 3, '--resume')
    assert result.returncode != 0
    assert 'no checkpoint to resume from in the work dir' in result.stderr
    assert '--resume-if-possible' in result.stderr
    assert not osp.exists(osp.join(work_dir, 'iter_3.pth'))
