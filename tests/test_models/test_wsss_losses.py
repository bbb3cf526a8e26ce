# Copyright (c) OpenMMLab. All rights reserved.
"""Hand-computable checks of PTCLoss (+ its label helpers) and BgFgSegLoss."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_wsss.models.losses.bg_fg_seg_loss import BgFgSegLoss
from mmseg_wsss.models.losses.discrepancy_loss import DiscrepancyLoss
from mmseg_wsss.models.losses.ptc_loss import PTCLoss, label_to_affinity
from mmseg_wsss.models.wsss import ptc_label_from_cam
from mmseg_wsss.registry import MODELS

IGN = 255

# -------------------------------------------------------------- PTC loss ---


def _tokens(*vectors):
    """(1, D, 2, 2) token map from four D-dim vectors in raster order."""
    t = torch.tensor(vectors, dtype=torch.float32)  # (4, D)
    return t.t().reshape(1, -1, 2, 2).contiguous()


def _crafted():
    # t0 = (1, 0), t1 = (1, 1), t2 = (-1, 0), t3 = (3, 4) (ignored)
    tokens = _tokens([1., 0.], [1., 1.], [-1., 0.], [3., 4.])
    label = torch.tensor([[[0, 0], [1, IGN]]])
    return tokens, label


# Flat labels [0, 0, 1, 255]; valid tokens 0, 1, 2; ordered off-diagonal
# pairs: positive (0,1), (1,0) -> N_pos = 2; negative (0,2), (2,0), (1,2),
# (2,1) -> N_neg = 4.
# |cos|: S01 = 1/sqrt2, S02 = |-1| = 1, S12 = |-1/sqrt2| = 1/sqrt2.
# pos sum = 2/sqrt2 = sqrt2; neg sum = 2 + 2/sqrt2 = 2 + sqrt2.
# loss = 0.5 (1 - sqrt2/3) + 0.5 (2 + sqrt2)/5 = 0.7 - sqrt2/15 = 0.605719...
CRAFTED_PTC = 0.7 - math.sqrt(2) / 15


def test_ptc_hand_computed():
    tokens, label = _crafted()
    loss = PTCLoss(loss_weight=1.0)(tokens, label)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(CRAFTED_PTC, abs=1e-6)
    # default weight 0.2
    assert PTCLoss()(tokens, label).item() == pytest.approx(
        0.2 * CRAFTED_PTC, abs=1e-6)


def test_ptc_absolute_cosine_and_norm():
    tokens, label = _crafted()
    ref = PTCLoss(loss_weight=1.0)(tokens, label)
    # Flipping a token's sign or rescaling it changes nothing: |cos|.
    flipped = tokens.clone()
    flipped[0, :, 0, 1] *= -3.  # t1 -> -3 * t1
    torch.testing.assert_close(PTCLoss(loss_weight=1.0)(flipped, label), ref)
    # With the signed cosine, the negative pairs (0,2) (cos -1) and (1,2)
    # (cos -1/sqrt2) would subtract: neg sum -(2 + sqrt2) instead of
    # 2 + sqrt2, i.e. a loss 2 (2 + sqrt2) / 10 = 0.683 lower.
    signed = 0.5 * (1 - math.sqrt(2) / 3) - 0.5 * (2 + math.sqrt(2)) / 5
    assert ref.item() - signed == pytest.approx(
        (2 + math.sqrt(2)) / 5, abs=1e-6)


def test_ptc_ignored_tokens_and_diagonal():
    tokens, label = _crafted()
    ref = PTCLoss(loss_weight=1.0)(tokens, label)
    # The ignored token t3 can be anything.
    other = tokens.clone()
    other[0, :, 1, 1] = torch.tensor([-7., 0.5])
    torch.testing.assert_close(PTCLoss(loss_weight=1.0)(other, label), ref)
    # Diagonal excluded: one valid token (+ ignores) has no pair -> 0.5.
    single = torch.tensor([[[3, IGN], [IGN, IGN]]])
    assert PTCLoss(loss_weight=1.0)(tokens, single).item() == 0.5
    # Were the diagonal counted, two identical bg tokens give pos 4/5 not 2/3:
    # pos sum = 2 (pairs (0,1),(1,0), S=1), N_pos = 2 -> 0.5 (1 - 2/3).
    same = _tokens([1., 0.], [2., 0.], [0., 1.], [0., 1.])
    two = torch.tensor([[[0, 0], [IGN, IGN]]])
    assert PTCLoss(loss_weight=1.0)(same, two).item() == pytest.approx(
        0.5 * (1 - 2 / 3), abs=1e-6)


def test_ptc_all_ignore_is_finite():
    tokens, _ = _crafted()
    tokens.requires_grad_(True)
    loss = PTCLoss(loss_weight=1.0)(tokens, torch.full((1, 2, 2), IGN))
    # 0.5 * (1 - 0 / 1) + 0.5 * 0 / 1: the "+1" keeps empty sets finite.
    assert loss.item() == 0.5
    loss.backward()
    assert torch.all(tokens.grad == 0)


def test_ptc_batch_pooling():
    # Image A: all bg, four identical tokens -> 12 positive pairs, S = 1.
    a = _tokens([1., 0.], [1., 0.], [1., 0.], [1., 0.])
    la = torch.zeros(1, 2, 2, dtype=torch.long)
    # Image B: two orthogonal tokens of different labels -> 2 negative pairs
    # with S = 0, the rest ignored.
    b = _tokens([1., 0.], [0., 1.], [1., 1.], [1., 1.])
    lb = torch.tensor([[[0, 1], [IGN, IGN]]])
    ptc = PTCLoss(loss_weight=1.0)
    pooled = ptc(torch.cat([a, b]), torch.cat([la, lb]))
    # Pooled: N_pos = 12, pos sum 12; N_neg = 2, neg sum 0
    # -> 0.5 (1 - 12/13) + 0 = 1/26.
    assert pooled.item() == pytest.approx(1 / 26, abs=1e-6)
    # Per image: A = 0.5 (1 - 12/13) + 0.5 * 0/1 = 1/26;
    # B = 0.5 (1 - 0/1) + 0.5 * 0/3 = 0.5; their mean 0.2692 != 1/26.
    loss_a, loss_b = ptc(a, la), ptc(b, lb)
    assert loss_a.item() == pytest.approx(1 / 26, abs=1e-6)
    assert loss_b.item() == pytest.approx(0.5, abs=1e-6)
    assert abs(pooled.item() - (loss_a + loss_b).item() / 2) > 0.2


def test_ptc_gradient_flows_to_tokens():
    tokens, label = _crafted()
    tokens.requires_grad_(True)
    PTCLoss()(tokens, label).backward()
    grad = tokens.grad
    assert torch.isfinite(grad).all()
    assert grad[0, :, :, :].flatten(1)[:, :3].abs().sum() > 0
    # the ignored token t3 receives no gradient
    assert torch.all(grad[0, :, 1, 1] == 0)


def test_ptc_shape_check_name_and_registry():
    tokens, label = _crafted()
    with pytest.raises(ValueError):
        PTCLoss()(tokens, label[:, :1])
    assert PTCLoss().loss_name == 'loss_ptc'
    assert PTCLoss(loss_name='loss_aff').loss_name == 'loss_aff'
    built = MODELS.build(dict(type='PTCLoss', loss_weight=0.5))
    assert isinstance(built, PTCLoss) and built.loss_weight == 0.5


def test_label_to_affinity():
    label = torch.tensor([[[0, 1], [IGN, 1]]])  # flat [0, 1, 255, 1]
    expected = torch.tensor([[
        [IGN, 0, IGN, 0],
        [0, IGN, IGN, 1],
        [IGN, IGN, IGN, IGN],
        [0, 1, IGN, IGN],
    ]])
    aff = label_to_affinity(label)
    assert aff.shape == (1, 4, 4)
    assert torch.equal(aff, expected)
    # pairs never cross images: a batch gives one (hw, hw) block per image
    two = label_to_affinity(torch.cat([label, torch.zeros_like(label)]))
    assert two.shape == (2, 4, 4)
    assert torch.equal(two[0], expected[0])
    # all-bg image: 1 everywhere except the ignored diagonal
    eye = torch.eye(4, dtype=torch.bool)
    assert torch.equal(two[1], torch.where(eye, IGN, 1))


# ---------------------------------------------------- ptc_label_from_cam ---


def _block_cam(values):
    """(1, C, 4, 4) CAM whose 2x2 blocks are constant (exact under the
    bilinear, align_corners=False halving to the 2x2 token grid)."""
    cam = torch.tensor(values, dtype=torch.float32)[None]  # (1, C, 2, 2)
    return cam.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def test_ptc_label_from_cam_thresholds():
    cam = _block_cam([[[0.9, 0.5], [0.1, 0.0]], [[0.0, 0.0], [0.0, 0.8]]])
    cls = torch.tensor([[1., 1.]])
    label = ptc_label_from_cam(cam, cls, (2, 2), low_thr=0.25, high_thr=0.7)
    # 0.9 > high -> class 1; 0.5 in (low, high] -> ignore; 0.1 <= low -> bg;
    # class 2's 0.8 > high -> 2.
    assert torch.equal(label, torch.tensor([[[1, IGN], [0, 2]]]))
    # absent classes are zeroed: without class 2 the last token is bg
    label = ptc_label_from_cam(
        cam, torch.tensor([[1., 0.]]), (2, 2), low_thr=0.25, high_thr=0.7)
    assert torch.equal(label, torch.tensor([[[1, IGN], [0, 0]]]))
    # per-image thresholds (e.g. DuPL's dynamic high threshold)
    label = ptc_label_from_cam(
        cam.repeat(2, 1, 1, 1),
        cls.repeat(2, 1), (2, 2),
        low_thr=0.25,
        high_thr=torch.tensor([0.7, 0.85]))
    assert torch.equal(label[1], torch.tensor([[1, IGN], [0, IGN]]))


def test_ptc_label_from_cam_resizes_before_threshold():
    # One token covers pixels valued 1.0 (top row) and 0.2 (bottom row):
    # bilinear halving averages them to 0.6 -> ignore. Thresholding first
    # would have given fg/bg pixels instead.
    cam = torch.zeros(1, 1, 4, 4)
    cam[0, 0, 0, :2] = 1.0
    cam[0, 0, 1, :2] = 0.2
    label = ptc_label_from_cam(
        cam, torch.ones(1, 1), (2, 2), low_thr=0.25, high_thr=0.7)
    assert torch.equal(label, torch.tensor([[[IGN, 0], [0, 0]]]))
    expected = F.interpolate(
        cam, size=(2, 2), mode='bilinear', align_corners=False)
    assert expected[0, 0, 0, 0].item() == pytest.approx(0.6)


def test_ptc_label_from_cam_img_box_on_token_grid():
    # 8x8 CAM -> 4x4 tokens (16 px per token in a real 448 crop, 2 here).
    cam = torch.full((2, 1, 8, 8), 0.9)
    cls = torch.ones(2, 1)
    # Box rows [1, 8) and cols [0, 5) in pixels -> tokens fully inside:
    # rows ceil(1/2)=1 .. floor(8/2)=4 (1, 2, 3), cols 0 .. floor(5/2)=2
    # (0, 1); second image: no box.
    label = ptc_label_from_cam(
        cam,
        cls, (4, 4),
        low_thr=0.25,
        high_thr=0.7,
        img_box=[[1, 8, 0, 5], None])
    expected = torch.full((4, 4), IGN)
    expected[1:4, 0:2] = 1
    assert torch.equal(label[0], expected)
    assert torch.equal(label[1], torch.ones(4, 4, dtype=torch.long))
    # a tensor of boxes works as well
    label_t = ptc_label_from_cam(
        cam[:1],
        cls[:1], (4, 4),
        low_thr=0.25,
        high_thr=0.7,
        img_box=torch.tensor([[1, 8, 0, 5]]))
    assert torch.equal(label_t[0], expected)


# ----------------------------------------------------------- BgFgSegLoss ---


def _seg_inputs():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    label = torch.randint(0, 3, (2, 4, 4), generator=g)
    label[0, 0, :2] = IGN
    label[1, 3, 3] = IGN
    label[0, 1, 1] = 0  # make sure both sets are non-empty
    label[0, 1, 2] = 2
    return logits, label


def _masked_ce(logits, label, mask):
    """F.cross_entropy (mean) over the pixels of ``mask`` only."""
    return F.cross_entropy(logits.permute(0, 2, 3, 1)[mask], label[mask])


def test_bg_fg_matches_masked_cross_entropy():
    logits, label = _seg_inputs()
    bg = label == 0
    fg = (label != 0) & (label != IGN)
    expected = 0.5 * _masked_ce(logits, label, bg) + \
        0.5 * _masked_ce(logits, label, fg)
    loss = BgFgSegLoss(loss_weight=1.0)(logits, label)
    torch.testing.assert_close(loss, expected)
    # the official form: two F.cross_entropy calls with the other set ignored
    bg_label = label.masked_fill(label != 0, IGN)
    fg_label = label.masked_fill(label == 0, IGN)
    official = 0.5 * (
        F.cross_entropy(logits, bg_label, ignore_index=IGN) +
        F.cross_entropy(logits, fg_label, ignore_index=IGN))
    torch.testing.assert_close(loss, official)
    # loss_weight applied (default 0.1)
    torch.testing.assert_close(BgFgSegLoss()(logits, label), 0.1 * expected)


def test_bg_fg_empty_sets():
    logits, label = _seg_inputs()
    fg = (label != 0) & (label != IGN)
    bg = label == 0
    ce_fg = _masked_ce(logits, label, fg)
    ce_bg = _masked_ce(logits, label, bg)
    seg = BgFgSegLoss(loss_weight=1.0)
    # no background pixel: 0.5 * CE(fg)
    no_bg = label.masked_fill(bg, IGN)
    torch.testing.assert_close(seg(logits, no_bg), 0.5 * ce_fg)
    # no foreground pixel: 0.5 * CE(bg)
    no_fg = label.masked_fill(fg, IGN)
    torch.testing.assert_close(seg(logits, no_fg), 0.5 * ce_bg)


def test_bg_fg_all_ignore():
    logits, _ = _seg_inputs()
    logits.requires_grad_(True)
    loss = BgFgSegLoss(loss_weight=1.0)(logits, torch.full((2, 4, 4), IGN))
    assert loss.item() == 0.0 and not torch.isnan(loss)
    assert loss.requires_grad
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_bg_fg_resize_and_ignore_override():
    g = torch.Generator().manual_seed(1)
    small = torch.randn(1, 3, 2, 2, generator=g, requires_grad=True)
    label = torch.randint(0, 3, (1, 4, 4), generator=g)
    label[0, 0, 0] = 0
    label[0, 0, 1] = 1
    seg = BgFgSegLoss(loss_weight=1.0)
    up = F.interpolate(
        small, size=(4, 4), mode='bilinear', align_corners=False)
    torch.testing.assert_close(seg(small, label), seg(up, label))
    seg(small, label).backward()
    assert small.grad.abs().sum() > 0
    # an ignore_index passed by an mmseg decode head overrides the default
    odd = label.masked_fill(label == 2, 7)
    torch.testing.assert_close(
        seg(up, odd, ignore_index=7),
        seg(up, label.masked_fill(label == 2, IGN)))
    with pytest.raises(NotImplementedError):
        seg(up, label, weight=torch.ones(1, 4, 4))


def test_bg_fg_name_and_registry():
    assert BgFgSegLoss().loss_name == 'loss_seg'
    assert BgFgSegLoss(loss_name='loss_seg2').loss_name == 'loss_seg2'
    built = MODELS.build(dict(type='BgFgSegLoss', loss_weight=0.2))
    assert isinstance(built, BgFgSegLoss) and built.loss_weight == 0.2


# DiscrepancyLoss: the cosine's eps (cos_eps). The other DiscrepancyLoss
# tests are in test_dupl.py.


def test_torch_cosine_clamps_each_norm():
    """torch's cosine is x.y / (max(|x|, eps) * max(|y|, eps)), not x.y /
    max(|x| |y|, eps): with |x| = 5e-4, |y| = 2e-4 and eps = 1e-6 the product
    (1e-7) is below eps, each norm is not, and the cosine is unchanged."""
    x = torch.tensor([[3e-4, 4e-4]], dtype=torch.float64)
    y = torch.tensor([[0., 2e-4]], dtype=torch.float64)
    for eps in (1e-6, 1e-8):
        cos = torch.nn.CosineSimilarity(dim=-1, eps=eps)(x, y)
        torch.testing.assert_close(cos, x.new_tensor([0.8]))


def _tiny_channel_feats():
    # (B=1, D=2, h=1, w=2). Channel 0 of f1 has the spatial vector
    # (3e-7, 4e-7), norm 5e-7, between 1e-8 and 1e-6; every other channel
    # vector is (1, 0).
    f1 = torch.tensor([[[[3e-7, 4e-7]], [[1., 0.]]]], dtype=torch.float64)
    f2 = torch.tensor([[[[1., 0.]], [[1., 0.]]]], dtype=torch.float64)
    return f1, f2


def test_discrepancy_code_cos_eps_hand_computed():
    f1, f2 = _tiny_channel_feats()
    # channel 0: x.y = 3e-7, |y| = 1:
    #   eps 1e-6: 3e-7 / (max(5e-7, 1e-6) * 1) = 0.3
    #   eps 1e-8: 3e-7 / (max(5e-7, 1e-8) * 1) = 0.6 (the true cosine)
    # channel 1: 1. D(a, b) = 1 + mean_c cos, the same both ways.
    for cos_eps, cos0 in ((1e-6, 0.3), (1e-8, 0.6)):
        loss = DiscrepancyLoss(mode='code', cos_eps=cos_eps, loss_weight=1.)
        expected = 2 * (1 + (cos0 + 1.) / 2)
        torch.testing.assert_close(
            loss(f1, f2), f1.new_tensor(expected), rtol=0, atol=1e-12)
        # the same as the code's module
        cos = torch.nn.CosineSimilarity(dim=-1, eps=cos_eps)
        ref = (1 + cos(f1.flatten(2), f2.flatten(2)).mean()) + (
            1 + cos(f2.flatten(2), f1.flatten(2)).mean())
        torch.testing.assert_close(loss(f1, f2), ref)
    # the default is the code's explicit 1e-6
    assert DiscrepancyLoss().cos_eps == 1e-6
    torch.testing.assert_close(
        DiscrepancyLoss(loss_weight=1.)(f1, f2), f1.new_tensor(3.3))
    # ordinary features (norms far above both eps) do not see it
    g1, g2 = torch.randn(2, 2, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(
        DiscrepancyLoss(cos_eps=1e-6)(g1, g2),
        DiscrepancyLoss(cos_eps=1e-8)(g1, g2),
        rtol=0,
        atol=0)


def test_discrepancy_paper_cos_eps_hand_computed():
    # One channel only: the flattened map of f1 is (3e-7, 4e-7).
    f1, f2 = (f[:, :1] for f in _tiny_channel_feats())
    eps = 1e-6
    for cos_eps, cos in ((1e-6, 0.3), (1e-8, 0.6)):
        loss = DiscrepancyLoss(
            mode='paper', eps=eps, cos_eps=cos_eps, loss_weight=1.)
        expected = 2 * -math.log(1 - cos + eps)
        torch.testing.assert_close(
            loss(f1, f2), f1.new_tensor(expected), rtol=0, atol=1e-12)


def test_discrepancy_cos_eps_checked_and_built():
    for bad in (0., -1e-6, float('nan')):
        with pytest.raises(ValueError):
            DiscrepancyLoss(cos_eps=bad)
    built = MODELS.build(dict(type='DiscrepancyLoss', cos_eps=1e-8))
    assert isinstance(built, DiscrepancyLoss) and built.cos_eps == 1e-8
