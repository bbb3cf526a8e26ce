# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/benchmark_memory.py: the linear fit, the largest
batch per budget, the config defaults, and one CPU run end to end (the GPU
path with ``--verify`` needs a device)."""
import os.path as osp
import sys

import pytest

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_memory as bm  # noqa: E402

sys.path.pop(0)
GIB = 2**30


def test_linear_fit_and_largest_batch_by_hand():
    # 10 GiB at batch 2, 16 GiB at batch 4: 4 GiB fixed + 3 GiB per image.
    fixed, per_image = bm.linear_fit(2, 10 * GIB, 4, 16 * GIB)
    assert (fixed, per_image) == (4 * GIB, 3 * GIB)
    # (23.5 - 4) / 3 = 6.5 -> 6 images; (79.5 - 4) / 3 = 25.17 -> 25.
    assert bm.largest_batch(fixed, per_image, 23.5 * GIB) == 6
    assert bm.largest_batch(fixed, per_image, 79.5 * GIB) == 25
    # Exactly on the budget still fits; one image over does not.
    assert bm.largest_batch(fixed, per_image, 7 * GIB) == 1
    assert bm.largest_batch(fixed, per_image, 6.9 * GIB) == 0
    with pytest.raises(ValueError):  # a flat line bounds no batch
        bm.largest_batch(fixed, 0., 79.5 * GIB)


def test_args_and_config_defaults():
    cfg = osp.join(REPO_ROOT, 'configs/dupl/dupl_vitb_voc.py')
    args = bm.parse_args([cfg])
    assert args.fit_batches == (1, 2) and args.budgets == (24, 80)
    with pytest.raises(SystemExit):  # the cap is a GPU allocator setting
        bm.parse_args([cfg, '--verify', '--device', 'cpu'])
    with pytest.raises(SystemExit):
        bm.parse_args([cfg, '--fit-batches', '2', '2'])
    # The configs' batch per GPU and crop, overrides applied.
    assert bm.config_defaults(cfg) == (1, 448)
    toy = osp.join(REPO_ROOT, 'configs/cam_baseline/cam_resnet_toy.py')
    assert bm.config_defaults(toy) == (16, 96)
    assert bm.config_defaults(toy,
                              ['train_dataloader.batch_size=3']) == (3, 96)


def test_cpu_run_end_to_end(capsys):
    toy = osp.join(REPO_ROOT, 'configs/cam_baseline/cam_resnet_toy.py')
    bm.main([
        toy, '--device', 'cpu', '--batch-size', '2', '--size', '32',
        '--threads', '1', '--fit-batches', '1', '2'
    ])
    out = capsys.readouterr().out
    assert 'peak resident memory (CPU)' in out
    assert "batch 2 (the config's): " in out
    assert 'fit over batches 1 and 2' in out
    lines = [x for x in out.splitlines() if x.startswith('largest batch')]
    if 'no estimate' in out:  # resident memory did not rise at 32 px
        assert lines == [] and 'memory did not grow from batch 1 to 2' in out
    else:
        assert len(lines) == 2 and all(
            x.endswith('(estimate, from CPU resident memory)') for x in lines)


def test_no_estimate_when_memory_does_not_grow(monkeypatch, capsys):
    # Resident memory is noisy: batch 2 measured below batch 1 gives a
    # falling line, which must print no (huge) largest batch.
    resident = {1: 900 * 2**20, 2: 890 * 2**20}
    monkeypatch.setattr(
        bm,
        'measure',
        lambda args, batch, cap_gb=None: {
            'fits': True,
            'resident': resident[batch]
        })
    toy = osp.join(REPO_ROOT, 'configs/cam_baseline/cam_resnet_toy.py')
    bm.main([toy, '--device', 'cpu', '--batch-size', '2', '--size', '32'])
    out = capsys.readouterr().out
    assert 'memory did not grow from batch 1 to 2: no estimate' in out
    assert 'largest batch' not in out
    assert str(sys.maxsize) not in out
