# Copyright (c) OpenMMLab. All rights reserved.
"""RRM and ASDT segmentors (#17): the label CAMs, the reliable labels over
the CRF pool, the alternate teacher of the student, max fusion at
inference, frozen parts, the heads and the optimiser groups."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import LabelData
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT
from mmseg_wsss.engine.optimizers import PretrainedNewOptimWrapperConstructor
from mmseg_wsss.models.heads import CAMClsHead, RRMSegHead
from mmseg_wsss.models.wsss import (rrm_crf_inputs, rrm_label_from_crf,
                                    rrm_reliable_label)
from mmseg_wsss.registry import MODELS

pytestmark = pytest.mark.usefixtures('one_thread')
RRM_TOY = osp.join(REPO_ROOT, 'configs', 'rrm', 'rrm_toy.py')
ASDT_TOY = osp.join(REPO_ROOT, 'configs', 'asdt', 'asdt_toy.py')
pydensecrf = pytest.importorskip('pydensecrf.densecrf')


def _model(path, **train_cfg):
    cfg = Config.fromfile(path)
    cfg.model.train_cfg.update(train_cfg)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _batch(labels, size=48, box=None):
    samples, inputs = [], []
    gen = torch.Generator().manual_seed(1)
    for lab in labels:
        s = SegDataSample()
        s.gt_cls_label = LabelData(data=torch.tensor(lab, dtype=torch.float))
        meta = dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size))
        if box is not None:
            meta['img_box'] = box
        s.set_metainfo(meta)
        samples.append(s)
        inputs.append(
            torch.randint(
                0, 255, (3, size, size), dtype=torch.uint8, generator=gen))
    return dict(inputs=inputs, data_samples=samples)


def _at_iter(value):
    MessageHub.get_instance('rrm_asdt_test').update_info('iter', value)


def _labels(n=9, present=(0, 3)):
    lab = [0.] * n
    for c in present:
        lab[c] = 1.
    return lab


# ------------------------------------------------------------- parts --


def test_cam_cls_head_dropout_only_in_training():
    torch.manual_seed(0)
    head = CAMClsHead(8, 3, dropout=0.5)
    feat = torch.rand(2, 8, 4, 4)
    head.eval()
    eval_logits = head(feat)
    torch.testing.assert_close(
        eval_logits,
        head.classifier(feat.mean((2, 3), keepdim=True)).flatten(1))
    head.train()
    assert not torch.allclose(head(feat), eval_logits)
    # CAMs never see the dropout.
    torch.testing.assert_close(head.cam(feat), head.cam(feat))
    assert CAMClsHead(8, 3).dropout is None
    with pytest.raises(ValueError, match='dropout'):
        CAMClsHead(8, 3, dropout=1.)


def test_rrm_seg_head_shapes_and_parameters():
    head = RRMSegHead(4096, 21, channels=512, dilation=12)
    assert head(torch.rand(1, 4096, 5, 5)).shape == (1, 21, 5, 5)
    # Two 3x3 convs with biases: 4096*512*9 + 512 + 512*21*9 + 21.
    assert sum(p.numel() for p in head.parameters()) == \
        4096 * 512 * 9 + 512 + 512 * 21 * 9 + 21
    assert head.conv1.dilation == (12, 12) and head.conv2.padding == (12, 12)


def test_split_reliable_label_equals_the_whole():
    """rrm_crf_inputs + a CRF + rrm_label_from_crf = rrm_reliable_label
    (what the segmentor's pool runs in pieces)."""
    from mmseg_wsss.models.postprocess import DenseCRF
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    cams = rng.random((3, 20, 20)).astype(np.float32)
    y = np.array([1, 0, 1])
    crf = DenseCRF(preset='1stage')
    inputs = rrm_crf_inputs(cams, y)
    assert [x.shape for x in inputs] == [(3, 20, 20)] * 2
    # The background row is (1 - max over the present classes)^power.
    np.testing.assert_allclose(
        inputs[0][0], (1 - cams[[0, 2]].max(0))**4, rtol=1e-6)
    np.testing.assert_allclose(inputs[1][1:], cams[[0, 2]])
    whole = rrm_reliable_label(image, cams, y, crf)
    pieces = rrm_label_from_crf(cams, y, [crf(image, s) for s in inputs])
    np.testing.assert_array_equal(whole, pieces)
    assert rrm_crf_inputs(cams, np.zeros(3)) == []


# ---------------------------------------------------------------- RRM --


def test_label_cams_match_the_code_by_hand():
    """Multi-scale CAMs on the scale-1 grid, averaged, upsampled, masked,
    max-normalised, recomputed here step by step."""
    model = _model(RRM_TOY).eval()
    data = model.data_preprocessor(_batch([_labels()]), False)
    x = data['inputs']
    y = model.cls_labels(data['data_samples'], x)
    got = model.label_cams(x, y)
    feat = model.extract_feat(x)
    grid, size = feat.shape[-2:], x.shape[-1]  # padded to 96 by the config
    cams = []
    for s in (1.0, 0.5, 1.5, 2.0):
        xs = x if s == 1.0 else nn.functional.interpolate(
            x, size=(round(size * s), ) * 2, mode='bilinear')
        cam = model.cls_head.cam(model.extract_feat(xs)).relu()
        cams.append(nn.functional.interpolate(cam, size=grid, mode='bilinear'))
    cam = nn.functional.interpolate(
        sum(cams) / 4, size=(size, size), mode='bilinear') * y[:, :, None,
                                                               None]
    want = cam / (cam.amax((2, 3), keepdim=True) + 1e-5)
    torch.testing.assert_close(got, want)
    assert (got[0, 1] == 0).all() and got[0, 0].max() > .99


def test_rrm_loss_step_logs_crf_time_and_reliable_labels():
    model = _model(RRM_TOY)
    model.train()
    data = model.data_preprocessor(
        _batch([_labels(), _labels(present=(5, ))],
               size=96,
               box=[0, 80, 0, 96]), True)
    losses = model.loss(**data)
    assert set(losses) == {'loss_cls', 'loss_seg', 'loss_energy', 'time_crf'}
    assert losses['time_crf'] > 0 and not losses['time_crf'].requires_grad
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert model.decode_head.conv2.weight.grad.abs().sum() > 0
    assert model.cls_head.classifier.weight.grad.abs().sum() > 0
    label = model.pseudo_labels(data['inputs'], data['data_samples'])
    assert label.shape == (2, 96, 96)
    # Only background, the present classes and ignore.
    assert set(label[0].unique().tolist()) <= {0, 1, 4, 255}
    assert set(label[1].unique().tolist()) <= {0, 6, 255}
    # The code labels the padding; ignore_padding ignores it.
    model.train_cfg.ignore_padding = True
    label = model.pseudo_labels(data['inputs'], data['data_samples'])
    assert (label[:, 80:] == 255).all()


def test_reliable_labels_over_worker_processes_equal_inline():
    model = _model(RRM_TOY)
    data = model.data_preprocessor(
        _batch([_labels(), _labels(present=(2, 7))]), False)
    x, samples = data['inputs'], data['data_samples']
    inline = model.pseudo_labels(x, samples)
    pooled = _model(
        RRM_TOY, crf=dict(preset='1stage', xy_scale=96 / 448,
                          workers=2)).pseudo_labels(x, samples)
    torch.testing.assert_close(inline, pooled)


def test_frozen_batch_norms_stay_frozen():
    model = _model(RRM_TOY)
    model.train()
    bns = [
        m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)
    ]
    assert bns and all(not m.training for m in bns)
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    before = {
        k: v.clone()
        for k, v in model.backbone.state_dict().items() if 'bn' in k
    }
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.1)
    data = model.data_preprocessor(_batch([_labels()]), True)
    losses = model.loss(**data)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    opt.step()
    for k, v in model.backbone.state_dict().items():
        if k in before:
            torch.testing.assert_close(v, before[k], msg=k)


def test_wr38_conv1a_trains_as_the_code_and_freezes_on_request():
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'rrm', 'rrm_wr38_voc.py'))
    backbone = MODELS.build(cfg.model.backbone)
    assert backbone.conv1a.weight.requires_grad
    cfg.model.backbone.frozen_stages = 0
    assert not MODELS.build(cfg.model.backbone).conv1a.weight.requires_grad


def test_rrm_optimiser_groups_and_momentum_quirk():
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'rrm', 'rrm_wr38_voc.py'))
    assert cfg.optim_wrapper.optimizer.momentum == 1e-5
    model = _model(RRM_TOY)
    ow = dict(cfg.optim_wrapper)
    paramwise_cfg = ow.pop('paramwise_cfg')
    ow.pop('constructor')
    wrapper = PretrainedNewOptimWrapperConstructor(ow, paramwise_cfg)(model)
    groups = {
        (g['lr'], g['weight_decay']): g
        for g in wrapper.optimizer.param_groups
    }
    lr, wd = 7e-4, 1e-5
    ids = {key: {id(p) for p in g['params']} for key, g in groups.items()}
    new_w = {
        id(model.cls_head.classifier.weight),
        id(model.decode_head.conv1.weight)
    }
    assert new_w <= ids[(10 * lr, wd)]
    assert id(model.decode_head.conv1.bias) in ids[(20 * lr, 0.)]
    assert id(next(model.backbone.parameters())) in ids[(lr, wd)]


def test_rrm_inference_is_the_softmax():
    model = _model(RRM_TOY, ).eval()
    model.test_cfg.flip = False
    data = model.data_preprocessor(_batch([_labels()]), False)
    out = model.inference(data['inputs'])
    assert out.shape == (1, 10, 48, 48)
    torch.testing.assert_close(out.sum(1), torch.ones(1, 48, 48))


# --------------------------------------------------------------- ASDT --


def test_student_teacher_follows_the_pulse_width_signal():
    model = _model(ASDT_TOY)  # period 30, tau 5 -> T_h 6, from 150
    assert model.high_iters == 6
    got = [
        model.student_teacher(i)
        for i in (0, 149, 150, 155, 156, 179, 180, 186)
    ]
    assert got == [
        'class', 'class', 'class', 'class', 'seg', 'seg', 'class', 'seg'
    ]
    # Duty cycle of the class teacher: 1 / tau.
    seq = [model.student_teacher(i) for i in range(300, 300 + 30 * 10)]
    assert seq.count('class') == 60
    # From the MessageHub's iteration (survives --resume).
    _at_iter(156)
    assert model.student_teacher() == 'seg'
    released = _model(ASDT_TOY, alternation=dict(form='released'))
    assert {released.student_teacher(i) for i in range(0, 400)} == {'class'}
    with pytest.raises(ValueError, match='form'):
        _model(ASDT_TOY, alternation=dict(form='other'))


def test_asdt_loss_switches_the_student_label(monkeypatch):
    model = _model(ASDT_TOY)
    model.train()
    data = model.data_preprocessor(
        _batch([_labels(), _labels(present=(4, ))]), True)
    seen = []
    real = model.seg_losses

    def spy(inputs, logits, label, img_box, suffix=''):
        seen.append((suffix, label.clone()))
        return real(inputs, logits, label, img_box, suffix)

    monkeypatch.setattr(model, 'seg_losses', spy)
    _at_iter(10)  # before start_iter: the class teacher's label
    losses = model.loss(**data)
    assert {
        'loss_seg', 'loss_energy', 'loss_seg_student', 'loss_energy_student'
    } <= set(losses)
    (_, teacher), (suffix, student) = seen
    assert suffix == '_student'
    torch.testing.assert_close(teacher, student)
    seen.clear()
    _at_iter(156)  # low level: B^st = CRF(P^st)
    losses = model.loss(**data)
    (_, teacher), (_, student) = seen
    want = model.seg_teacher_label(
        data['inputs'], model.decode_head(model.extract_feat(data['inputs'])),
        model.cls_labels(data['data_samples'], data['inputs']), [None] * 2)
    torch.testing.assert_close(student, want)
    # Absent classes are ignored in B^st.
    assert set(student[1].unique().tolist()) <= {0, 5, 255}
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.student_head.conv2.weight.grad.abs().sum() > 0
    assert len(
        model.pseudo_labels(
            data['inputs'], data['data_samples'], iteration=156)) == 2


def test_asdt_inference_max_fusion():
    model = _model(ASDT_TOY).eval()
    model.test_cfg.flip = False
    data = model.data_preprocessor(_batch([_labels()]), False)
    x = data['inputs']
    probs = model.head_probs(x)
    fused = model.inference(x)
    torch.testing.assert_close(fused,
                               torch.maximum(probs['seg'], probs['student']))
    model.test_cfg.output = 'student'
    torch.testing.assert_close(model.inference(x), probs['student'])
    model.test_cfg.output = 'seg_teacher'
    torch.testing.assert_close(model.inference(x), probs['seg'])
    cfg = Config.fromfile(ASDT_TOY)
    cfg.model.test_cfg.output = 'mean'
    with pytest.raises(ValueError, match='output'):
        MODELS.build(cfg.model)


def test_training_crfs_on_the_torch_backend():
    """train_cfg.crf / student_crf take the PyTorch backend; the labels
    equal pydensecrf's here."""
    model = _model(ASDT_TOY)
    data = model.data_preprocessor(_batch([_labels()], size=96), True)
    want = model.pseudo_labels(
        data['inputs'], data['data_samples'], iteration=156)
    torch_model = _model(
        ASDT_TOY,
        crf=dict(preset='1stage', xy_scale=96 / 448, backend='torch'),
        student_crf=dict(preset='rrm', xy_scale=96 / 448, backend='torch'))
    assert torch_model.label_crf.backend == 'torch'
    got = torch_model.pseudo_labels(
        data['inputs'], data['data_samples'], iteration=156)
    for w, g in zip(want, got):
        assert (w == g).float().mean() >= 0.99


def test_pw_high_share_is_the_mean_over_50_iterations():
    """The runtime's log processor shows pw_high at the logged iteration
    and its share over the last 50 iterations: with T 30, T_h 6, of
    iterations 10..59 only 30..35 are on the high level (6 of 50)."""
    from mmengine.runner import LogProcessor

    from mmseg_wsss.models.wsss import pulse_high
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/asdt/asdt_toy.py'))
    processor = LogProcessor(**cfg.log_processor)
    hub = MessageHub.get_instance('test_pw_high_share')
    highs = [float(pulse_high(i, 30, 6)) for i in range(60)]
    assert sum(highs[-50:]) == 6
    for value in highs:
        hub.update_scalar('train/pw_high', value)

    class _Runner:
        message_hub = hub

    custom_cfg = processor._parse_windows_size(_Runner, 59,
                                               processor.custom_cfg)
    tag = processor._collect_scalars(custom_cfg, _Runner, 'train')
    assert tag['pw_high'] == highs[-1] == 0.0
    assert tag['pw_high_share'] == pytest.approx(0.12)
