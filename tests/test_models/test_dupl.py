# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL: discrepancy and consistency losses, the dynamic threshold, cross
supervision, the gates and the multi-branch validation."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import LabelData, PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT, assert_loaded_from
from mmseg_wsss.evaluation.metrics import MultiBranchIoUMetric
from mmseg_wsss.models.losses import ConsistencyLoss, DiscrepancyLoss
from mmseg_wsss.models.wsss.thresholds import (cosine_threshold,
                                               per_image_threshold)

CONFIG = osp.join(REPO_ROOT, 'configs', 'dupl', 'dupl_toy.py')

pytestmark = pytest.mark.usefixtures('one_thread')


# Discrepancy loss -----------------------------------------------------------
def _maps():
    # Two images, two channels, 1 x 2 spatial grid.
    f1 = torch.tensor([[[[1., 0.]], [[0., 1.]]], [[[1., 1.]], [[2., 0.]]]],
                      requires_grad=True)
    f2 = torch.tensor([[[[1., 0.]], [[1., 0.]]], [[[1., 1.]], [[0., 3.]]]],
                      requires_grad=True)
    return f1, f2


def test_discrepancy_code_form_by_hand():
    f1, f2 = _maps()
    # Per channel cosines of the spatial vectors: image 0: 1, 0; image 1:
    # 1, 0 -> mean 0.5 -> 1 + 0.5 per direction, both directions equal.
    loss = DiscrepancyLoss(mode='code', loss_weight=0.1)(f1, f2)
    assert loss.item() == pytest.approx(0.1 * (1.5 + 1.5))


def test_discrepancy_paper_form_by_hand():
    f1, f2 = _maps()
    eps = 1e-6
    # Flattened per image: image 0 (1,0,0,1).(1,0,1,0) = 1 / (sqrt2 sqrt2);
    # image 1 (1,1,2,0).(1,1,0,3) = 2 / (sqrt6 sqrt11).
    cos = torch.tensor([0.5, 2 / math.sqrt(66)])
    one_way = -torch.log(1 - cos + eps).mean()
    loss = DiscrepancyLoss(mode='paper', eps=eps, loss_weight=1.)(f1, f2)
    assert loss.item() == pytest.approx(2 * one_way.item(), rel=1e-6)
    # Identical features (identical initial students): finite thanks to eps.
    same = DiscrepancyLoss(mode='paper', eps=eps, loss_weight=1.)(f1, f1)
    assert torch.isfinite(same)
    # (float32 cos of equal vectors is 1 within ~1e-7, hence the tolerance)
    assert same.item() == pytest.approx(-2 * math.log(eps), rel=1e-2)


@pytest.mark.parametrize('mode', ['code', 'paper'])
def test_discrepancy_gradient_only_into_the_non_detached_side(mode):
    f1, f2 = _maps()
    loss = DiscrepancyLoss(mode=mode)
    loss._one_way(f1, f2).backward()
    assert f1.grad is not None and f1.grad.abs().sum() > 0
    assert f2.grad is None
    # The symmetric loss: each side's gradient comes from its own term only.
    f1, f2 = _maps()
    loss(f1, f2).backward()
    g1, g2 = f1.grad.clone(), f2.grad.clone()
    a, b = _maps()
    (loss.loss_weight * loss._one_way(a, b)).backward()
    torch.testing.assert_close(g1, a.grad)
    a, b = _maps()
    (loss.loss_weight * loss._one_way(b, a)).backward()
    torch.testing.assert_close(g2, b.grad)


def test_discrepancy_errors():
    with pytest.raises(ValueError, match='mode'):
        DiscrepancyLoss(mode='cosine')
    with pytest.raises(ValueError, match='shape'):
        DiscrepancyLoss()(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))


# Dynamic threshold ----------------------------------------------------------
def test_cosine_threshold_code_origin():
    kw = dict(
        start=0.7, target=[0.7, 0.55], max_iters=20000, warmup_iters=2000)
    # Before and at the end of the CAM warm-up: the start value.
    for it in (0, 1999, 2000):
        torch.testing.assert_close(
            cosine_threshold(it, **kw), torch.tensor([0.7, 0.7]))
    # Half-way through t / (T - 1): cos = 0 -> the mean of start and target.
    mid = 2000 + (18000 - 1) / 2
    torch.testing.assert_close(
        cosine_threshold(mid, **kw), torch.tensor([0.7, 0.625]))
    # t = T - 1 (the last iteration) reaches the target, and stays there.
    for it in (19999, 25000):
        torch.testing.assert_close(
            cosine_threshold(it, **kw), torch.tensor([0.7, 0.55]))


def test_cosine_threshold_paper_origin():
    kw = dict(start=0.7, target=0.55, max_iters=20000, origin='paper')
    assert cosine_threshold(0, **kw).item() == pytest.approx(0.7)
    assert cosine_threshold(10000, **kw).item() == pytest.approx(0.625)
    assert cosine_threshold(20000, **kw).item() == pytest.approx(0.55)
    # A quarter: 0.7 - 0.15 * (1 - cos(pi / 4)) / 2.
    expected = 0.7 - 0.15 * (1 - math.cos(math.pi / 4)) / 2
    assert cosine_threshold(5000, **kw).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match='origin'):
        cosine_threshold(0, 0.7, 0.55, 10, origin='epoch')


def test_per_image_threshold_is_max_over_present_classes():
    thr = torch.tensor([0.7, 0.55, 0.6])
    labels = torch.tensor([[0, 1, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0]])
    out = per_image_threshold(thr, labels, default=0.7)
    torch.testing.assert_close(out, torch.tensor([0.55, 0.6, 0.7, 0.7]))
    # A scalar threshold applies to every class.
    torch.testing.assert_close(
        per_image_threshold(torch.tensor(0.6), labels, default=0.7),
        torch.tensor([0.6, 0.6, 0.6, 0.7]))
    with pytest.raises(ValueError, match='class thresholds'):
        per_image_threshold(torch.ones(2), labels, default=0.7)


# Consistency loss -----------------------------------------------------------
def test_consistency_code_form_confident_unlabelled_pixels_only():
    strong = torch.tensor([[[[2., 0.]], [[0., 1.]]]])  # (1, 2, 1, 2)
    weak = torch.tensor([[[[5., 0.]], [[0., 0.1]]]])  # conf 0.993 / 0.525
    mask = torch.tensor([[[True, True]]])
    loss = ConsistencyLoss(
        conf_thr=0.9, loss_weight=1.)(
            strong, mask, weak_logits=weak)
    # Only pixel 0 is confident: CE(strong[:, :, 0, 0], class 0).
    expected = F.cross_entropy(strong[:, :, 0, 0], torch.tensor([0]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Not in the mask: nothing; an empty set gives 0, not NaN.
    none = ConsistencyLoss(loss_weight=1.)(
        strong, torch.zeros_like(mask), weak_logits=weak)
    assert none.item() == 0


def test_consistency_paper_form_and_errors():
    strong = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0, 0] = 255
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2] = True
    loss = ConsistencyLoss(loss_weight=0.05)(strong, mask, target=target)
    keep = mask & (target != 255)
    ce = F.cross_entropy(strong, target.clamp(max=2), reduction='none')
    assert loss.item() == pytest.approx(
        0.05 * ce[keep].mean().item(), rel=1e-6)
    loss.backward()
    assert strong.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match='exactly one'):
        ConsistencyLoss()(strong, mask)


# The segmentor --------------------------------------------------------------
def _model(**train_cfg):
    cfg = Config.fromfile(CONFIG)
    cfg.model.data_preprocessor.size = (48, 48)
    cfg.model.train_cfg.update(train_cfg)
    return MODELS.build(cfg.model)


def _batch(model, size=48, n=2):
    torch.manual_seed(0)
    inputs = [
        torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
        for _ in range(n)
    ]
    samples = []
    for i in range(n):
        s = SegDataSample()
        label = torch.zeros(model.num_classes - 1)
        label[i] = label[3] = 1
        s.gt_cls_label = LabelData(data=label)
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, size, size)))
        s.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                img_box=[0, size, 0, size]))
        samples.append(s)
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True)


def _set_iter(it):
    MessageHub.get_current_instance().update_info('iter', it)


def test_students_are_independent_copies_of_one_config():
    model = _model()
    s1, s2 = model.students
    assert s1 is not s2
    assert type(s1).__name__ == 'ToCoNetwork'
    assert model.loss_energy is None
    assert model.loss_seg.loss_weight == 0.2
    p1 = dict(s1.named_parameters())
    for name, p in s2.named_parameters():
        assert p.data_ptr() != p1[name].data_ptr()
    # The heads are drawn independently (the backbones are pretrained).
    assert not torch.equal(s1.decode_head.conv_seg.weight,
                           s2.decode_head.conv_seg.weight)


def test_init_weights_loads_the_pretrained_backbone_into_both_students(
        toy_vit_pretrain):
    # Regression: in a torch nn.ModuleList the students were never reached
    # by BaseModule.init_weights and trained from their random init.
    cfg = Config.fromfile(CONFIG)
    cfg.model.network.backbone.init_cfg.checkpoint = toy_vit_pretrain
    torch.manual_seed(1)  # other random weights than the checkpoint's
    model = MODELS.build(cfg.model)
    model.init_weights()
    for student in model.students:
        assert_loaded_from(student.backbone, toy_vit_pretrain)


# The code's gates (toy: cam_iters 300, gmm_iters 1,200): segmentation when
# n_iter > 300; filtering from 1,200 itself, its consistency loss computed
# but weighted 0 at 1,200 and on from 1,201.
@pytest.mark.parametrize('it, expected', [
    (0, {'loss_dis', 'loss_seg_1', 'loss_seg_2'}),
    (300, {'loss_dis', 'loss_seg_1', 'loss_seg_2'}),
    (301, {'loss_dis', 'loss_seg_1', 'loss_seg_2'}),
    (1200, {
        'loss_dis', 'loss_seg_1', 'loss_seg_2', 'loss_consist_1',
        'loss_consist_2'
    }),
    (1201, {
        'loss_dis', 'loss_seg_1', 'loss_seg_2', 'loss_consist_1',
        'loss_consist_2'
    }),
])
def test_loss_items_and_gates(it, expected):
    model = _model().train()
    data = _batch(model)
    _set_iter(it)
    losses = model(**data, mode='loss')
    base = {
        f'{n}_{k}'
        for n in ('loss_cls', 'loss_cls_aux', 'loss_ptc')
        for k in (1, 2)
    }
    assert set(losses) == base | expected
    seg_on = it > 300
    assert (losses['loss_seg_1'].item() != 0) == seg_on
    if it == 1200:
        assert losses['loss_consist_1'].item() == 0
        assert losses['loss_consist_1'].requires_grad
    sum(losses.values()).backward()
    for student in model.students:
        grads = [p.grad for p in student.decode_head.parameters()]
        has = any(g is not None and g.abs().sum() > 0 for g in grads)
        assert has == seg_on
    _set_iter(0)


def test_cross_supervision(monkeypatch):
    """Student 1's label reaches student 2's loss, not its own."""
    model = _model().train()
    data = _batch(model)
    s1, s2 = model.students
    label_1 = torch.full((2, 48, 48), 1, dtype=torch.long)
    label_2 = torch.full((2, 48, 48), 2, dtype=torch.long)
    # Each network's CAMs are marked by which network computed them.
    real_cams = model.training_cams
    monkeypatch.setattr(
        model, 'training_cams',
        lambda net, x, *feats: tuple(c + (0 if net is s1 else 10)
                                     for c in real_cams(net, x, *feats)))
    monkeypatch.setattr(
        model, 'refine_label', lambda images, cam, *a, **k: label_1
        if cam.max() < 10 else label_2)
    seen = {}
    real = model.loss_seg.forward

    def spy(logits, label, **kw):
        seen[len(seen) + 1] = label
        return real(logits, label, **kw)

    monkeypatch.setattr(model.loss_seg, 'forward', spy)
    _set_iter(301)
    model(**data, mode='loss')
    assert torch.equal(seen[1], label_2)  # network 1 learns from network 2
    assert torch.equal(seen[2], label_1)
    _set_iter(0)


def test_dynamic_threshold_reaches_ptc_and_seg_labels(monkeypatch):
    model = _model().train()
    data = _batch(model)
    seen = []
    real = model.refine_label

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(model, 'refine_label', spy)
    _set_iter(2999)  # the end of the toy schedule: the (uniform) target
    model(**data, mode='loss')
    target = model.train_cfg.dynamic_thr.target
    assert target == 0.275  # the toy's VOC-halved thresholds
    for thr in seen:
        torch.testing.assert_close(thr, torch.full((2, ), target))
    _set_iter(0)


def test_validate_all_branches_and_best_branch():
    model = _model().eval()
    assert model.test_cfg.branch == 'mean'  # label-free by default
    model.test_cfg.branch = 'best'  # the opt-in, chosen on val labels
    data = _batch(model)
    assert int(model.best_branch) == 1
    assert 'best_branch' in model.state_dict()
    out = model(**data, mode='predict')
    assert not any('pred_sem_seg_branch1' in s for s in out)
    model.validate_all_branches = True
    out = model(**data, mode='predict')
    for s in out:
        assert torch.equal(s.pred_sem_seg.data, s.pred_sem_seg_branch1.data)
        assert s.pred_sem_seg_branch2.data.shape == s.pred_sem_seg.data.shape
    model.set_best_branch(2)
    out = model(**data, mode='predict')
    for s in out:
        assert torch.equal(s.pred_sem_seg.data, s.pred_sem_seg_branch2.data)
    expected = model.network_inference(model.students[1], data['inputs'])
    torch.testing.assert_close(model.inference(data['inputs']), expected)
    model.test_cfg.branch = 1
    assert model.test_branch() == 1
    with pytest.raises(ValueError, match='branch'):
        model.set_best_branch(3)


def test_mean_of_both_students():
    """test_cfg.branch='mean': the students' probabilities averaged (no
    label picks a student)."""
    model = _model().eval()
    model.test_cfg.branch = 'mean'
    # By hand: logits (2, 0) and (0, 1) -> p = (.881, .119), (.269, .731)
    # -> mean (.575, .425): class 0; CAM score maps average as they are.
    s1 = torch.tensor([2., 0.]).view(1, 2, 1, 1)
    s2 = torch.tensor([0., 1.]).view(1, 2, 1, 1)
    mean = model.mean_scores([s1, s2]).exp().flatten()
    p1, p2 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1))
    torch.testing.assert_close(
        mean, torch.tensor([(p1 + 1 - p2) / 2, (1 - p1 + p2) / 2]))
    torch.testing.assert_close(
        model.mean_scores([s1, s2], output='cam').flatten(),
        torch.tensor([1., .5]))

    data = _batch(model)
    scores = [
        model.network_inference(net, data['inputs']) for net in model.students
    ]
    expected = model.mean_scores(scores)
    torch.testing.assert_close(model.inference(data['inputs']), expected)
    out = model(**data, mode='predict')
    model.validate_all_branches = True
    both = model(**data, mode='predict')
    for single, multi in zip(out, both):
        assert torch.equal(single.pred_sem_seg.data, multi.pred_sem_seg.data)
        assert 'pred_sem_seg_branch2' in multi


def test_multi_branch_metric_picks_the_better_branch():
    metric = MultiBranchIoUMetric()
    metric.dataset_meta = dict(classes=('bg', 'a', 'b'))
    gt = torch.tensor([[0, 1], [2, 2]])
    good, bad = gt.clone(), torch.zeros_like(gt)
    sample = dict(
        gt_sem_seg=dict(data=gt[None]),
        pred_sem_seg=dict(data=bad[None]),
        pred_sem_seg_branch1=dict(data=bad[None]),
        pred_sem_seg_branch2=dict(data=good[None]))
    metric.process({}, [sample])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['best_branch'] == 2
    assert metrics['branch2_mIoU'] == 100.0
    assert metrics['branch1_mIoU'] < 100.0
    # The unprefixed metrics are the test-time prediction's, not the best
    # branch's: no selection on the val labels.
    assert metrics['mIoU'] == metrics['branch1_mIoU']
    with pytest.raises(KeyError, match='multi-branch'):
        metric.process({}, [dict(gt_sem_seg=dict(data=gt[None]))])
