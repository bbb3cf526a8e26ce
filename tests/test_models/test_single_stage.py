# Copyright (c) OpenMMLab. All rights reserved.
"""1Stage (official_code_notes 4): nGWP and the focal mask penalty, PAMR, the
stochastic gate, GCI, pseudo labels, the class-balanced CE, the backbones,
the head, the optimiser groups and the segmentor's gates."""
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import LabelData
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT
from mmseg_wsss.engine.optimizers import PretrainedNewOptimWrapperConstructor
from mmseg_wsss.models.losses import (ClassBalancedCELoss,
                                      class_balanced_weights)
from mmseg_wsss.models.utils import GlobalCueInjection, StochasticGate
from mmseg_wsss.models.wsss import (PAMR, add_background_logit,
                                    focal_mask_penalty, mask_class_scores,
                                    masks_to_pseudo_label, ngwp_scores)
from mmseg_wsss.registry import MODELS

pytestmark = pytest.mark.usefixtures('one_thread')
IGNORE = 255
TOY_CFG = osp.join(REPO_ROOT, 'configs', 'single_stage', 'single_stage_toy.py')

# ------------------------------------------------- nGWP + focal penalty --


def test_ngwp_and_focal_penalty_by_hand():
    # One foreground class, two pixels: logits 1 and 1 + ln 3 against the
    # constant background logit 1 give masks (bg, fg) = (1/2, 1/2) and
    # (1/4, 3/4).
    fg = torch.tensor([1., 1. + math.log(3.)]).view(1, 1, 1, 2)
    logits = add_background_logit(fg, 1.)
    assert logits[0, 0].tolist() == [[1., 1.]]
    masks = logits.softmax(dim=1)
    torch.testing.assert_close(masks[0, :, 0, 1], torch.tensor([.25, .75]))
    y = ngwp_scores(logits, masks)  # eps = 1 (the code)
    fg_num = 1. * .5 + (1. + math.log(3.)) * .75
    torch.testing.assert_close(y, torch.tensor([[.75 / 1.75, fg_num / 2.25]]))
    pen = focal_mask_penalty(masks, p=3., lam=.01)
    torch.testing.assert_close(
        pen,
        torch.tensor([[.625**3 * math.log(.385), .375**3 * math.log(.635)]]))
    # Eq. 4 is the p = 0 case; an empty mask gets log(lambda).
    torch.testing.assert_close(
        focal_mask_penalty(torch.zeros(1, 1, 2, 2), p=3., lam=.01),
        torch.tensor([[math.log(.01)]]))
    _, m, scores = mask_class_scores(fg)
    torch.testing.assert_close(m, masks)
    torch.testing.assert_close(scores, (y + pen)[:, 1:])


def test_ngwp_is_invariant_to_mask_size():
    """nGWP (unlike GAP) does not grow with the extent of a segment when
    eps is negligible; the focal penalty does."""
    small = torch.full((1, 1, 8, 8), -20.)
    small[..., :2, :2] = 5.
    large = torch.full((1, 1, 8, 8), -20.)
    large[..., :6, :6] = 5.
    ys, yl = (ngwp_scores(*_lm(x), eps=1e-6)[0, 1] for x in (small, large))
    assert ys.item() == pytest.approx(yl.item(), rel=1e-4)
    ps, pl = (focal_mask_penalty(_lm(x)[1])[0, 1] for x in (small, large))
    assert pl > ps


def _lm(fg):
    logits = add_background_logit(fg)
    return logits, logits.softmax(1)


# ------------------------------------------------------------------ PAMR --


def _reference_pamr(img, mask, dilations, num_iter, scale=.1, power=1):
    """The code's definition written with shift convolutions (independent
    of the dilated-neighbour machinery)."""

    def shifts(x, center, diff):
        B, K, H, W = x.shape
        pos = [(i, j) for i in range(3) for j in range(3)
               if center or (i, j) != (1, 1)]
        w = torch.zeros(len(pos), 1, 3, 3, dtype=x.dtype)
        for n, (i, j) in enumerate(pos):
            w[n, 0, i, j] = 1.
            if diff:
                w[n, 0, 1, 1] -= 1.  # neighbour - centre
        out = [
            F.conv2d(
                F.pad(x.reshape(B * K, 1, H, W), [d] * 4, mode='replicate'),
                w,
                dilation=d) for d in dilations
        ]
        return torch.cat(out, 1).view(B, K, -1, H, W)

    std = shifts(img, True, False).std(2, keepdim=True)
    aff = (-shifts(img, False, True).abs() / (1e-8 + scale * std**power)).mean(
        1, keepdim=True).softmax(2)
    for _ in range(num_iter):
        mask = (shifts(mask, False, False) * aff).sum(2)
    return mask


def test_pamr_matches_the_code_definition():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 13, 17, dtype=torch.float64)
    mask = torch.rand(2, 4, 13, 17, dtype=torch.float64).softmax(1)
    pamr = PAMR(num_iter=3, dilations=(1, 2, 4, 8, 12, 24))
    torch.testing.assert_close(
        pamr(img, mask), _reference_pamr(img, mask, pamr.dilations, 3))
    aff = pamr.affinity(img)
    assert aff.shape == (2, 1, 48, 13, 17)
    # The paper's Eq. 8 (sigma squared) as a switch.
    paper = PAMR(num_iter=2, dilations=(1, 3), std_scale=1., std_power=2.)
    torch.testing.assert_close(
        paper(img, mask), _reference_pamr(img, mask, (1, 3), 2, 1., 2))
    torch.testing.assert_close(
        aff.sum(2), torch.ones(2, 1, 13, 17, dtype=torch.float64))


def test_pamr_keeps_a_constant_mask_and_has_no_grad():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 20, 20)
    mask = torch.full((1, 3, 20, 20), 1. / 3, requires_grad=True)
    out = PAMR()(img, mask)
    assert not out.requires_grad
    torch.testing.assert_close(out, torch.full_like(out, 1. / 3))


def test_pamr_resizes_the_image_to_the_masks():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 32, 32)
    mask = torch.rand(1, 2, 8, 8).softmax(1)
    small = F.interpolate(img, (8, 8), mode='bilinear', align_corners=True)
    torch.testing.assert_close(PAMR()(img, mask), PAMR()(small, mask))


def test_pamr_sharpens_a_blurred_mask_along_an_image_edge():
    """Left half dark, right half bright; the mask's soft boundary sits 3
    pixels left of the edge. PAMR moves it onto the edge."""
    H, W, edge = 16, 32, 16
    img = torch.zeros(1, 3, H, W)
    img[..., edge:] = 1.
    img += 0.02 * torch.rand(
        1, 3, H, W, generator=torch.Generator().manual_seed(0))
    cols = torch.arange(W, dtype=torch.float32)
    right = torch.sigmoid((cols - (edge - 3.5)) / 2.).expand(H, W)
    mask = torch.stack([1 - right, right])[None]
    truth = (cols >= edge).long().expand(H, W)
    refined = PAMR()(img, mask)
    err_before = (mask.argmax(1)[0] != truth).float().mean()
    err_after = (refined.argmax(1)[0] != truth).float().mean()
    assert err_before == 3 / W and err_after == 0
    ideal = torch.stack([1 - truth, truth])[None].float()
    assert (refined - ideal).abs().mean() < (mask - ideal).abs().mean()
    # Sharper: the step across the image edge grows, the ramp on each side
    # of it flattens.
    step = lambda m: (m[0, 1, :, edge] - m[0, 1, :, edge - 1]).mean()  # noqa
    assert step(refined) > 0.7 > 0.3 > step(mask)
    ramp = refined[0, 1].diff(dim=1).abs()
    assert ramp[:, :edge - 1].max() < 0.02 and ramp[:, edge:].max() < 0.02
    torch.testing.assert_close(refined.sum(1), torch.ones(1, H, W))


# ---------------------------------------------------------- stochastic gate --


def _gate_draws(mode, n=4000):
    torch.manual_seed(0)
    deep, shallow = torch.randn(2, 1, 3, 4, 4).unbind(0)
    gate = StochasticGate(psi=0.3, mode=mode).train()
    out = gate(deep.expand(n, -1, -1, -1), shallow.expand(n, -1, -1, -1))
    gate.eval()
    return deep, shallow, out, gate(deep, shallow)


def test_stochastic_gate_code_form():
    deep, shallow, out, test_out = _gate_draws('code')
    # Each element is either the rescaled deep feature or the shallow one.
    rescaled = (deep - 0.3 * shallow) / 0.7
    is_shallow = (out - shallow).abs() < 1e-6
    assert torch.all(is_shallow | ((out - rescaled).abs() < 1e-5))
    assert is_shallow.float().mean().item() == pytest.approx(0.3, abs=0.01)
    # Training mean = deep features; test = (1 - psi) deep + psi shallow.
    sd = (deep - shallow).abs() * math.sqrt(.21) / .7 / math.sqrt(len(out))
    assert torch.all((out.mean(0, keepdim=True) - deep).abs() < 5 * sd + 1e-6)
    torch.testing.assert_close(test_out, 0.7 * deep + 0.3 * shallow)


def test_stochastic_gate_paper_form():
    deep, shallow, out, test_out = _gate_draws('paper')
    is_shallow = (out - shallow).abs() < 1e-6
    assert torch.all(is_shallow | ((out - deep).abs() < 1e-6))
    # Eq. 9-10: the training mean equals the test output.
    sd = (deep - shallow).abs() * math.sqrt(.21) / math.sqrt(len(out))
    assert torch.all((out.mean(0, keepdim=True) - test_out).abs() < 5 * sd +
                     1e-6)
    with pytest.raises(ValueError):
        StochasticGate(mode='other')


def test_gci_adain_and_gmp():
    torch.manual_seed(0)
    gci = GlobalCueInjection(3, 5, channels=4).eval()
    shallow, deep = torch.randn(2, 3, 6, 6), torch.randn(2, 5, 3, 3)
    attrs = gci.deep_proj(deep).flatten(2).max(-1)[0]
    x = gci.shallow_proj(shallow)
    expected = gci.out_proj(
        F.relu(x * (attrs[:, :4, None, None] + 1) + attrs[:, 4:, None, None]))
    torch.testing.assert_close(gci(shallow, deep), expected)
    # The shallow projection is normalised without affine parameters; with
    # instance norm (Eq. 11) per image and channel.
    assert not gci.shallow_proj.bn.affine
    gci_in = GlobalCueInjection(
        3, 5, channels=4, shallow_norm_cfg=dict(type='IN', affine=False))
    x = gci_in.shallow_proj(shallow)
    torch.testing.assert_close(
        x.mean((-2, -1)), torch.zeros(2, 4), atol=1e-5, rtol=0)


# ---------------------------------------------------------- pseudo labels --


def _crafted_masks():
    # (bg, class 1, class 2) at 6 pixels; thresholds: bg 0.7 x 1.0, class 1
    # 0.6 x 0.5 = 0.3, class 2 max(0.6 x 0.1, 0.2) = 0.2.
    bg = [1.0, 0.8, 0.5, 0.6, 0.71, 0.1]
    c1 = [0.0, 0.5, 0.4, 0.2, 0.3, 0.31]
    c2 = [0.0, 0.0, 0.0, 0.1, 0.0, 0.1]
    return torch.tensor([bg, c1, c2]).view(1, 3, 2, 3)


def test_pseudo_label_rule():
    label = masks_to_pseudo_label(_crafted_masks())
    # bg; conflict; class 1; empty; bg (0.3 is not > 0.3); class 1.
    assert label.flatten().tolist() == [0, IGNORE, 1, IGNORE, 0, 1]
    # The floor: a class whose peak is low never becomes positive.
    low = torch.tensor([[0.9, 0.1], [0.15, 0.19]]).view(1, 2, 1, 2)
    assert masks_to_pseudo_label(low).flatten().tolist() == [0, IGNORE]


def test_class_balanced_weights_by_hand():
    label = torch.tensor([[[0, 0, 0, 1], [IGNORE, 1, 0, 0]]])
    w = class_balanced_weights(label, 3)
    # 5 background and 2 class-1 pixels: (7 - 5) / 8, (7 - 2) / 8, 0.
    torch.testing.assert_close(
        w, torch.tensor([[[.25, .25, .25, .625], [0., .625, .25, .25]]]))


def test_balanced_ce_by_hand_and_image_filter():
    torch.manual_seed(0)
    label = torch.tensor([[[0, 0, 0, 1], [IGNORE, 1, 0, 0]]])
    logits = torch.randn(1, 3, 2, 4)
    loss = ClassBalancedCELoss()
    ce = F.cross_entropy(logits, label, ignore_index=IGNORE, reduction='none')
    expected = (class_balanced_weights(label, 3) * ce).sum() / 8
    torch.testing.assert_close(loss(logits, label), expected)
    # Kept when the pseudo label holds every image class plus background.
    torch.testing.assert_close(
        loss(logits, label, torch.tensor([[1., 0.]])), expected)
    # Dropped (0) when an image class has no pseudo-label pixel; a dropped
    # image still counts in the batch mean, as in the code.
    assert loss(logits, label, torch.tensor([[1., 1.]])) == 0
    both = loss(
        logits.repeat(2, 1, 1, 1), label.repeat(2, 1, 1),
        torch.tensor([[1., 0.], [1., 1.]]))
    torch.testing.assert_close(both, expected / 2)
    # Logits at a lower resolution are upsampled (align_corners=True).
    small = torch.randn(1, 3, 1, 2, requires_grad=True)
    out = loss(small, label)
    out.backward()
    assert small.grad.abs().sum() > 0
    # An all-ignore label gives 0, not NaN.
    assert loss(logits, torch.full_like(label, IGNORE)) == 0


def test_crafted_pipeline_drops_image_with_missing_class():
    label = masks_to_pseudo_label(_crafted_masks())
    logits = torch.randn(1, 3, 2, 3)
    loss = ClassBalancedCELoss()
    assert loss(logits, label, torch.tensor([[1., 0.]])) > 0
    assert loss(logits, label, torch.tensor([[1., 1.]])) == 0


# -------------------------------------------------------------- backbones --


def test_wide_resnet38_layout_and_freezing():
    bb = MODELS.build(dict(type='WideResNet38'))
    assert sum(p.numel() for p in bb.parameters()) == 105070912
    assert len(bb.state_dict()) == 228
    frozen = {n for n, p in bb.named_parameters() if not p.requires_grad}
    assert 'conv1a.weight' in frozen and 'b2_2.conv_branch2b1.weight' in frozen
    assert 'b3.conv_branch2a.weight' not in frozen
    assert all(
        n in frozen for n in dict(bb.named_parameters())
        if '.bn' in n or n.startswith('bn7'))
    bb.train()
    assert bb.training and not bb.b4.bn_branch2a.training
    assert bb.b7.dropout_2b1.training and bb.b7.dropout_2b1.p == 0.5
    with torch.no_grad():
        conv3, conv6 = bb(torch.randn(1, 3, 32, 40))
    assert conv3.shape == (1, 256, 8, 10) and conv6.shape == (1, 4096, 4, 5)
    assert conv6.min() >= 0  # bn7 + ReLU
    # b5's first convolution keeps dilation 1, the rest of the stage 2.
    assert bb.b5.conv_branch2a.dilation == (1, 1)
    assert bb.b5.conv_branch2b1.dilation == (2, 2)
    assert bb.b6.conv_branch2b1.dilation == (4, 4)


def test_dilated_vgg16_strides():
    vgg = MODELS.build(dict(type='DilatedVGG16')).eval()
    with torch.no_grad():
        conv3, conv6 = vgg(torch.randn(1, 3, 32, 32))
    assert conv3.shape == (1, 256, 8, 8) and conv6.shape == (1, 1024, 4, 4)
    assert not vgg.conv1_2.weight.requires_grad
    assert vgg.conv2_1.weight.requires_grad


# ------------------------------------------------------------------- head --


def _toy_head(**kwargs):
    cfg = dict(
        type='SingleStageHead',
        in_channels=(8, 16),
        num_classes=4,
        channels=16,
        skip_channels=4,
        aspp_dilations=(1, 2, 3, 4))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_head_shapes_and_frozen_aspp_statistics():
    torch.manual_seed(0)
    head = _toy_head().train()
    feats = (torch.randn(2, 8, 12, 12), torch.randn(2, 16, 6, 6))
    out = head(feats)
    assert out.shape == (2, 3, 12, 12)  # foreground logits at the skip size
    aspp_bns = [
        m for m in head.aspp.modules() if isinstance(m, nn.BatchNorm2d)
    ]
    assert aspp_bns and not any(m.training for m in aspp_bns)
    assert torch.all(aspp_bns[0].running_mean == 0)
    assert head.fuse.bn.training
    assert head.aspp.branches[0].conv.bias is None
    # Deterministic at test time; without GCI / SG for the ablations.
    head.eval()
    torch.testing.assert_close(head(feats), head(feats))
    for kwargs in (dict(use_gci=False), dict(gate=None)):
        assert _toy_head(**kwargs).eval()(feats).shape == (2, 3, 12, 12)


# -------------------------------------------------------------- optimiser --


def test_pretrained_new_optimiser_groups():
    model = nn.ModuleDict(
        dict(
            backbone=nn.Sequential(
                nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4),
                nn.Conv2d(4, 4, 1, bias=False)),
            decode_head=nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))))
    model.backbone[2].weight.requires_grad = False  # frozen: left out
    ctor = PretrainedNewOptimWrapperConstructor(
        dict(
            type='OptimWrapper',
            optimizer=dict(
                type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4)),
        dict(new_prefixes=('decode_head', )))
    groups = ctor(model).optimizer.param_groups
    got = [(len(g['params']), g['lr'], g['weight_decay']) for g in groups]
    assert got == [(2, 1e-3, 5e-4), (2, 2e-3, 0.), (2, 1e-2, 5e-4),
                   (2, 2e-2, 0.)]
    ids = {id(p) for g in groups for p in g['params']}
    assert id(model.backbone[2].weight) not in ids
    assert id(
        model.decode_head[1].bias) in {id(p)
                                       for p in groups[3]['params']}


# -------------------------------------------------------------- segmentor --


def _toy_model():
    cfg = Config.fromfile(TOY_CFG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _batch(model, labels, size=48):
    samples, inputs = [], []
    for lab in labels:
        s = SegDataSample()
        s.gt_cls_label = LabelData(data=torch.tensor(lab, dtype=torch.float))
        s.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size)))
        samples.append(s)
        inputs.append(
            torch.randint(0, 255, (3, size, size), dtype=torch.uint8))
    return dict(inputs=inputs, data_samples=samples)


def _at_iter(value):
    hub = MessageHub.get_instance('single_stage_test')
    hub.update_info('iter', value)


def test_segmentor_gates_the_segmentation_loss(monkeypatch):
    torch.manual_seed(0)
    model = _toy_model().train()
    labels = [[1.] + [0.] * 8, [0., 1.] + [0.] * 7]
    data = model.data_preprocessor(_batch(model, labels), True)
    calls = []
    orig = model.pamr.forward
    monkeypatch.setattr(model.pamr, 'forward',
                        lambda *a: calls.append(1) or orig(*a))
    start = model.train_cfg.seg_start_iter
    try:
        _at_iter(start - 1)
        losses = model(**data, mode='loss')
        assert losses['loss_seg'] == 0 and not calls
        _at_iter(start)
        losses = model(**data, mode='loss')
        assert calls and torch.isfinite(losses['loss_seg'])
        sum(losses.values()).backward()
    finally:
        _at_iter(0)
    assert model.decode_head.conv_seg.weight.grad.abs().sum() > 0


def test_segmentor_pseudo_label_zeroes_absent_classes():
    torch.manual_seed(0)
    model = _toy_model()
    inputs = torch.randn(1, 3, 16, 16)
    masks = torch.rand(1, 10, 4, 4).softmax(1)
    label = model.pseudo_label(
        inputs,
        masks,
        torch.tensor([[0., 1.] + [0.] * 7]),
        img_box=[[0, 16, 0, 8]])
    assert label.shape == (1, 16, 16)
    assert set(label.unique().tolist()) <= {0, 2, IGNORE}
    assert torch.all(label[:, :, 8:] == IGNORE)


def test_segmentor_predict_fusion_and_gt_classes():
    torch.manual_seed(0)
    model = _toy_model().eval()
    data = _batch(model, [[0., 0., 1.] + [0.] * 6], size=40)
    with torch.no_grad():
        out = model.test_step(data)[0]
    assert out.pred_sem_seg.data.shape == (1, 40, 40)
    assert out.seg_logits.data.shape == (10, 40, 40)
    model.test_cfg.cls_source = 'gt'  # not a fair evaluation
    with torch.no_grad():
        logits = model.test_step(data)[0].seg_logits.data
    assert torch.all(logits[1:3] == 0) and torch.all(logits[4:] == 0)
    assert torch.all(logits[3] > 0)
    # The background channel is the mean mask to the power 3 (<= 1).
    assert logits[0].max() <= 1
    # The code's canvas: a view as large as the canvas is not padded; a
    # padded one comes back at the image size.
    model.test_cfg.cls_source = 'pred'
    with torch.no_grad():
        plain = model.test_step(data)[0].seg_logits.data
        model.test_cfg.pad_size = (40, 40)
        torch.testing.assert_close(
            model.test_step(data)[0].seg_logits.data, plain)
        model.test_cfg.pad_size = (64, 56)
        padded = model.test_step(data)[0].seg_logits.data
    assert padded.shape == plain.shape
    assert not torch.allclose(padded, plain)
