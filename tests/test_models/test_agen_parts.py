# Copyright (c) OpenMMLab. All rights reserved.
"""AGEN's parts (#18), each equation on hand-computable tensors: CoAM
(Eqs. 5-9), the seed maps and confident regions (Eqs. 2-4 and delta's two
readings), the balanced seeding loss (Eq. 12) and the constrain-to-boundary
loss (Eq. 14)."""
import math

import pytest
import torch

from mmseg_wsss.models.losses import (BalancedSeedingLoss,
                                      ConstrainToBoundaryLoss)
from mmseg_wsss.models.utils import ContextAttention
from mmseg_wsss.models.wsss import confident_seeds, seed_maps

IGNORE = 255


def test_coam_is_the_identity_at_lambda_0_and_by_hand_at_1():
    lower = torch.tensor([1., 2.]).view(1, 1, 1, 2)  # F: C 1, N 2
    upper = torch.tensor([0., math.log(3.)]).view(1, 1, 1, 2)  # G
    coam = ContextAttention()
    assert coam.lam.item() == 0.
    torch.testing.assert_close(coam(lower, upper), lower)
    # a_1j = exp(1 * G_j) = (1, 3) -> (1/4, 3/4): E_1 = 1/4 + 3/2 = 7/4;
    # a_2j = exp(2 * G_j) = (1, 9) -> (1/10, 9/10): E_2 = 1/10 + 18/10.
    torch.testing.assert_close(
        coam.attention(lower, upper)[0], torch.tensor([[.25, .75], [.1, .9]]))
    with torch.no_grad():
        coam.lam.fill_(1.)
    torch.testing.assert_close(
        coam(lower, upper),
        torch.tensor([1. + 7 / 4, 2. + 1.9]).view(1, 1, 1, 2))
    # lambda learns: it gets a gradient (at 0 as well).
    coam = ContextAttention()
    coam(lower, upper).sum().backward()
    assert coam.lam.grad is not None and coam.lam.grad != 0


def test_coam_upsamples_the_upper_stage():
    torch.manual_seed(0)
    lower, upper = torch.rand(2, 3, 4, 6), torch.rand(2, 3, 2, 3)
    coam = ContextAttention(init_lambda=.5)
    out = coam(lower, upper)
    assert out.shape == lower.shape
    attn = coam.attention(lower, upper)
    assert attn.shape == (2, 24, 24)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 24))


def test_seed_maps_eqs_2_to_4():
    # F_0 = (-1, 1, 2): ReLU (0, 1, 2), / 2 -> (0, .5, 1); class 1 absent.
    feats = torch.tensor([[-1., 1., 2.], [5., 5., 5.]]).view(1, 2, 1, 3)
    maps = seed_maps(feats, torch.tensor([[1., 0.]]), (1, 3), bg_power=8)
    torch.testing.assert_close(
        maps[0, 1, 0], torch.tensor([0., .5, 1.]), atol=1e-4, rtol=0)
    assert (maps[0, 2] == 0).all()
    torch.testing.assert_close(
        maps[0, 0, 0], torch.tensor([1., .5**8, 0.]), atol=1e-4, rtol=0)


def test_confident_seeds_value_rule_conflicts_and_unassigned():
    # Background, class 1, class 2 (absent) maps of 4 pixels.
    maps = torch.tensor([
        [.9, .1, .5, .1],  # background
        [.1, .8, .6, .2],  # class 1
        [.0, .0, .0, .9],  # class 2: absent, never a seed
    ]).view(1, 3, 1, 4)
    seeds = confident_seeds(maps, torch.tensor([[1., 0.]]), delta=.4)
    # px 0: bg; px 1: class 1; px 2: bg and class 1 -> conflict; px 3:
    # nothing above delta among the present classes -> unassigned.
    assert seeds.tolist() == [[[0, 1, IGNORE, IGNORE]]]
    with pytest.raises(ValueError, match='rule'):
        confident_seeds(maps, torch.tensor([[1., 0.]]), .4, rule='mean')


def test_confident_seeds_top_rule():
    # Top 50 % of 4 pixels per present map: 2 pixels each.
    maps = torch.tensor([
        [.9, .8, .1, .0],  # background: pixels 0, 1
        [.0, .7, .6, .5],  # class 1: pixels 1, 2
    ]).view(1, 2, 1, 4)
    seeds = confident_seeds(maps, torch.tensor([[1.]]), delta=.5, rule='top')
    assert seeds.tolist() == [[[0, IGNORE, 1, IGNORE]]]


def test_balanced_seeding_loss_by_hand():
    # Image 1: pixel 0 seeded class 1 with S = 3/4, pixel 1 background with
    # S_0 = 1/2, pixel 2 ignored. Image 2: two fg seeds, S = 1/4 and 3/4.
    ln3 = math.log(3.)
    logits = torch.zeros(2, 2, 1, 3)
    logits[0, 1, 0, 0] = ln3
    logits[1, 1, 0, 0] = -ln3
    logits[1, 1, 0, 1] = ln3
    label = torch.tensor([[[1, 0, IGNORE]], [[1, 1, IGNORE]]])
    image = BalancedSeedingLoss()(logits, label)
    im1 = -math.log(.75) - math.log(.5)
    im2 = -(math.log(.25) + math.log(.75)) / 2  # no bg seed: 0
    assert image.item() == pytest.approx((im1 + im2) / 2, rel=1e-5)
    batch = BalancedSeedingLoss(reduction='batch')(logits, label)
    fg = -(math.log(.75) + math.log(.25) + math.log(.75)) / 3
    assert batch.item() == pytest.approx(fg - math.log(.5), rel=1e-5)


def test_constrain_to_boundary_loss_by_hand():
    s = torch.full((1, 2, 1, 1), .5)
    r = torch.tensor([1., 0.]).view(1, 2, 1, 1)
    loss = ConstrainToBoundaryLoss()
    assert loss(s, s).item() == pytest.approx(0., abs=1e-7)
    assert loss(s, r).item() == pytest.approx(math.log(2.), rel=1e-6)
    # R / S = 100 is clamped to 20 by default, not without the clamp.
    s2 = torch.tensor([.01, .99]).view(1, 2, 1, 1)
    assert loss(s2, r).item() == pytest.approx(math.log(20.), rel=1e-6)
    exact = ConstrainToBoundaryLoss(ratio_clamp=None)
    assert exact(s2, r).item() == pytest.approx(math.log(100.), rel=1e-5)
    # The CRF output is a constant: only S gets a gradient.
    s3 = s2.clone().requires_grad_(True)
    r3 = r.clone().requires_grad_(True)
    exact(s3, r3).backward()
    assert r3.grad is None and s3.grad is not None
