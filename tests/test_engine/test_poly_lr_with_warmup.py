# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from mmseg_wsss.engine import PolyLRWithWarmup


def _toco(t, base, warmup=1500, ratio=1e-6, power=0.9, max_iter=20000):
    """ToCo's PolyWarmupAdamW multiplier, written from the notes."""
    if t < warmup:
        return base * (1 - (1 - t / warmup) * (1 - ratio))
    return base * (1 - t / max_iter)**power


def test_matches_toco_formula_per_group():
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    opt = torch.optim.AdamW([{'params': [params[0]], 'lr': 6e-5},
                             {'params': [params[1]], 'lr': 6e-4}])
    sched = PolyLRWithWarmup(opt, warmup_iters=1500, end=20000)
    for t in range(0, 20000):
        if t in (0, 1, 749, 1499, 1500, 1501, 10000, 19999):
            for group, base in zip(opt.param_groups, (6e-5, 6e-4)):
                assert group['lr'] == pytest.approx(_toco(t, base),
                                                    rel=1e-9, abs=1e-15)
        opt.step()
        sched.step()


def test_invalid_arguments():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.)
    with pytest.raises(ValueError, match='by_epoch'):
        PolyLRWithWarmup(opt, by_epoch=True)
    with pytest.raises(ValueError, match='warmup_iters'):
        PolyLRWithWarmup(opt, warmup_iters=30, end=20)
