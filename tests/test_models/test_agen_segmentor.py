# Copyright (c) OpenMMLab. All rights reserved.
"""AGEN's network: the two-branch backbone, AGMs, accumulated CoAMs, the
losses of Eq. 15 and the ablation switches."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.structures import LabelData
from mmseg.structures import SegDataSample

import mmseg_wsss  # noqa: F401
from mmseg_wsss.models.losses import ConstrainToBoundaryLoss
from mmseg_wsss.models.wsss import confident_seeds, seed_maps
from mmseg_wsss.registry import MODELS

K = 4  # background + 3 classes
RESNET = dict(
    type='ResNetV1c',
    depth=18,
    stem_channels=8,
    base_channels=8,
    num_stages=4,
    out_indices=(3, ),
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    contract_dilation=True)


def agen_cfg(**kwargs):
    cfg = dict(
        type='AGENSegmentor',
        num_classes=K,
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            size=(32, 32)),
        backbone=dict(
            type='AGENBackbone',
            cls_branch=RESNET,
            seg_branch=RESNET,
            shared_stages=2),
        cls_head=dict(channels=16),
        seg_head=dict(channels=16),
        agm_cls_head=dict(channels=8),
        agm_seg_head=dict(channels=8),
        train_cfg=dict(boundary=dict(crf=dict(xy_scale=1 / 41, workers=0))))
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    torch.manual_seed(0)
    return MODELS.build(agen_cfg(**kwargs))


def batch(n=2, size=32, box=None):
    torch.manual_seed(1)
    inputs = torch.randn(n, 3, size, size)
    samples = []
    for i in range(n):
        s = SegDataSample()
        y = torch.zeros(K - 1)
        y[i % (K - 1)] = 1
        s.gt_cls_label = LabelData(data=y)
        s.set_metainfo(dict(img_box=box, img_shape=(size, size)))
        samples.append(s)
    return inputs, samples


def test_backbone_shares_the_first_stages_and_drops_the_replaced_ones():
    model = build()
    bb = model.backbone
    # B's stem and layer1 are A's: deleted from B, not duplicated.
    assert not hasattr(bb.seg_branch, 'stem')
    assert not hasattr(bb.seg_branch, 'layer1')
    assert hasattr(bb.cls_branch, 'layer1')
    feats = bb(torch.randn(2, 3, 32, 32))
    assert [f.shape[1] for f in feats['cls']] == [16, 32, 64]
    assert [f.shape[1] for f in feats['seg']] == [16, 32, 64]
    assert bb.cls_channels == (16, 32, 64)
    assert all(f.shape[-2:] == (4, 4) for f in feats['cls'] + feats['seg'])
    # A segmentation-only loss trains the shared layers.
    feats['seg'][-1].sum().backward()
    assert bb.cls_branch.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert bb.cls_branch.layer4[0].conv1.weight.grad is None


def test_backbone_vgg_wr38_cut():
    """VOC form: VGG-16 conv1-conv2 shared; WR38 from b3 (conv1a and b2*
    gone); VGG's fc6 / fc7 gone; channels and strides of A3-5 / B3-5."""
    bb = MODELS.build(
        dict(
            type='AGENBackbone',
            cls_branch=dict(type='DilatedVGG16', frozen_stages=-1),
            seg_branch=dict(type='WideResNet38', frozen_stages=-1)))
    assert not hasattr(bb.cls_branch, 'fc6')
    assert not hasattr(bb.cls_branch, 'fc7')
    assert not hasattr(bb.seg_branch, 'conv1a')
    assert not hasattr(bb.seg_branch, 'b2_1')
    assert bb.cls_channels == (256, 512, 512)
    assert bb.seg_channels == (256, 512, 1024, 4096)
    with torch.no_grad():
        feats = bb.eval()(torch.randn(1, 3, 65, 65))
    assert [f.shape[-1] for f in feats['cls']] == [17, 9, 9]
    assert [f.shape[-1] for f in feats['seg']] == [17, 9, 9, 9]


def test_coam_with_lambda_zero_is_the_identity():
    with_coam, without = build(), build(coam_stages=())
    without.load_state_dict(with_coam.state_dict(), strict=False)
    feats = with_coam.extract_feat(torch.randn(2, 3, 32, 32))
    a, b = with_coam.class_maps(feats), without.class_maps(feats)
    assert set(a) == {'cls', 'agm5', 'agm4', 'agm3'}
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_coam_accumulates_top_down():
    """CoAM-5 enhances F^{A5} against F^A, CoAM-4 F^{A4} against the
    enhanced F^{A5}, CoAM-3 F^{A3} against the enhanced F^{A4}."""
    model = build()
    calls = []
    for name, coam in model.agm_coam.items():
        coam.lam.data.fill_(0.5)
        coam.register_forward_hook(
            lambda m, args, out, name=name: calls.append((name, args, out)))
    maps = model.class_maps(model.extract_feat(torch.randn(2, 3, 32, 32)))
    assert [c[0] for c in calls] == ['agm5', 'agm4', 'agm3']
    assert calls[0][1][1] is maps['cls']
    assert calls[1][1][1] is calls[0][2] is maps['agm5']
    assert calls[2][1][1] is calls[1][2] is maps['agm4']


def test_coam_upper_map_skips_disabled_stages():
    """With AGM-4 off, CoAM-3 reads the enhanced F^{A5}; without CoAM-5
    its raw F^{A5} is the upper map."""
    model = build(agm_stages=(3, 5), coam_stages=(3, ))
    seen = []
    model.agm_coam['agm3'].register_forward_hook(
        lambda m, args, out: seen.append(args[1]))
    maps = model.class_maps(model.extract_feat(torch.randn(1, 3, 32, 32)))
    assert seen[0] is maps['agm5']


def test_shared_tails_switch():
    """One branch C and one branch D for all AGMs, a first conv per stage
    (its input channels), the last two layers shared; or one per stage."""
    model = build()
    assert len(model.agm_cls) == len(model.agm_seg) == 1
    assert model.agm_cls[0].in_channels == (64, 32, 16)  # AGM-5, 4, 3
    assert model.agm_seg[0].in_channels == (64, 32, 16)
    separate = build(share_cls_tail=False, share_seg_tail=False)
    assert len(separate.agm_cls) == len(separate.agm_seg) == 3
    n_shared = sum(p.numel() for p in model.parameters())
    n_sep = sum(p.numel() for p in separate.parameters())
    tail_c = 8 * 8 * 9 + 8 + 8 * (K - 1) + (K - 1)
    tail_d = 8 * 8 * 9 + 8 + 8 * K + K
    assert n_sep - n_shared == 2 * (tail_c + tail_d)
    # Same first convs and tails: the same maps.
    separate.backbone.load_state_dict(model.backbone.state_dict())
    separate.cls_head.load_state_dict(model.cls_head.state_dict())
    for i, n in enumerate((5, 4, 3)):
        g = separate.agm_cls[i]
        g.conv1[0].load_state_dict(model.agm_cls[0].conv1[i].state_dict())
        g.conv2.load_state_dict(model.agm_cls[0].conv2.state_dict())
        g.cls.load_state_dict(model.agm_cls[0].cls.state_dict())
    feats = model.extract_feat(torch.randn(1, 3, 32, 32))
    a, b = model.class_maps(feats), separate.class_maps(feats)
    for key in a:
        torch.testing.assert_close(a[key], b[key])


@pytest.mark.parametrize('stages,coam,keys', [
    ((), (), set()),
    ((4, ), (), {'agm4'}),
    ((4, ), (4, ), {'agm4'}),
    ((3, 4, 5), (), {'agm3', 'agm4', 'agm5'}),
])
def test_ablation_rows_give_their_losses(stages, coam, keys):
    model = build(agm_stages=stages, coam_stages=coam)
    model.train()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    expected = {'loss_cls', 'loss_seed', 'loss_boundary', 'time_crf'}
    for k in keys:
        expected |= {f'loss_cls_{k}', f'loss_seed_{k}'}
    assert set(losses) == expected
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    # Every parameter takes part (DDP without find_unused_parameters).
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
    assert len(model.agm_coam) == len(coam)


def test_lambda_learns_through_the_agm_classification_loss():
    model = build()
    model.train()
    for coam in model.agm_coam.values():
        coam.lam.data.fill_(0.1)
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    losses['loss_cls_agm3'].backward()
    assert model.agm_coam['agm3'].lam.grad != 0
    assert model.agm_coam['agm5'].lam.grad != 0  # through the upper maps


def test_bad_switches_are_errors():
    with pytest.raises(ValueError, match='agm_stages'):
        build(agm_stages=(2, 4))
    with pytest.raises(ValueError, match='coam_stages'):
        build(agm_stages=(4, ), coam_stages=(3, ))
    with pytest.raises(ValueError, match='boundary.at'):
        build(train_cfg=dict(boundary=dict(at='full')))


def test_seeds_use_each_maps_delta_and_ignore_padding():
    model = build()
    maps = torch.rand(2, K - 1, 4, 4)
    y = torch.tensor([[1., 0, 1], [0, 1, 0]])
    for key, delta in (('cls', 0.3), ('agm4', 0.4), ('agm5', 0.3)):
        got = model.seeds(maps, y, key, (32, 32), [None, None])
        want = confident_seeds(seed_maps(maps, y, (32, 32), 8.), y, delta)
        assert torch.equal(got, want)
    got = model.seeds(maps, y, 'cls', (32, 32), [[0, 16, 0, 32], None])
    assert (got[0, 16:] == 255).all()
    assert torch.equal(got[1], want[1])


def test_seeding_loss_of_s_seb_uses_branch_a_seeds(monkeypatch):
    """S^SeB is trained on H^Cla (A's seeds, delta 0.3), S^{AGM-n} on
    H^{AGM-n}."""
    model = build()
    model.train()
    inputs, samples = batch()
    seen = {}
    orig = model.seeds

    def spy(maps, cls_label, key, size, img_box):
        label = orig(maps, cls_label, key, size, img_box)
        seen[key] = label
        return label

    monkeypatch.setattr(model, 'seeds', spy)
    calls = []
    orig_loss = model.loss_seed.forward
    monkeypatch.setattr(
        model.loss_seed, 'forward',
        lambda s, label: calls.append(label) or orig_loss(s, label))
    model.loss(inputs, samples)
    assert [c is seen[k] for c, k in zip(calls, seen)] == [True] * 4
    assert list(seen) == ['cls', 'agm5', 'agm4', 'agm3']
    assert torch.equal(model.pseudo_labels(inputs, samples), seen['cls'])


BOUNDARY_AT = [('feature', (4, 4)), ('image', (32, 32))]


@pytest.mark.parametrize('at,size', BOUNDARY_AT)
def test_boundary_loss_is_the_kl_to_the_crf(monkeypatch, at, size):
    """Eq. 14 on S^SeB against the CRF's output, at the output grid (the
    image resized to it) or at the image size."""
    model = build(train_cfg=dict(boundary=dict(at=at)))
    inputs, _ = batch()
    logits = torch.randn(2, K, 4, 4, requires_grad=True)
    seen = {}

    def fake_crf(images, probs):
        seen['images'], seen['probs'] = images, probs
        out = [torch.full_like(torch.from_numpy(p), 0.1) for p in probs]
        for o in out:
            o[0] = 1 - 0.1 * (K - 1)
        return [o.numpy() for o in out]

    monkeypatch.setattr(model.boundary_crf, 'refine_probs', fake_crf)
    loss, seconds = model.boundary_loss(inputs, logits)
    assert seen['images'][0].shape == size + (3, )
    assert seen['images'][0].dtype.name == 'uint8'
    assert seen['probs'][0].shape == (K, ) + size
    probs = F.interpolate(logits, size=size, mode='bilinear') \
        if at == 'image' else logits
    probs = probs.softmax(dim=1)
    target = torch.full_like(probs, 0.1)
    target[:, 0] = 1 - 0.1 * (K - 1)
    want = ConstrainToBoundaryLoss()(probs, target)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert logits.grad.abs().sum() > 0 and seconds >= 0


def test_boundary_crf_runs_on_the_training_crf():
    """The real CRF (pydensecrf) at the output grid: a finite, positive
    loss and its seconds logged."""
    pytest.importorskip('pydensecrf')
    model = build()
    model.train()
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_boundary'])
    assert losses['loss_boundary'] > 0
    assert losses['time_crf'] > 0


def test_inference_and_visual_maps():
    model = build(test_cfg=dict(scales=(1.0, 0.5), flip=True))
    model.eval()
    inputs, samples = batch(size=32)
    with torch.no_grad():
        probs = model.inference(inputs)
    assert probs.shape == (2, K, 32, 32)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 32, 32))
    maps = model.visual_maps(inputs, samples)
    assert maps['cam'].shape == (2, K - 1, 32, 32)
    assert set(maps) == set(model.VISUAL_MAP_TITLES)
    assert torch.equal(maps['label_refined'],
                       model.pseudo_labels(inputs, samples))


def test_agm_modules_take_ten_times_the_learning_rate():
    """The paper's x10 for the attention guided modules, as the VOC
    schedule sets it (every 'agm_' module: branches C, D, CoAMs)."""
    from mmengine.config import Config
    sched = Config.fromfile(
        'configs/_base_/schedules/schedule_agen_sgd_35e.py')
    model = build()
    wrapper = build_optim_wrapper(model, copy.deepcopy(sched.optim_wrapper))
    lrs = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lrs[id(p)] = group['lr']
    for name, p in model.named_parameters():
        want = 1e-2 if name.startswith('agm_') else 1e-3
        assert lrs[id(p)] == pytest.approx(want), name
    assert sched.max_iters == 24675
    assert sched.param_scheduler[0].milestones == [7050, 14100, 21150]
