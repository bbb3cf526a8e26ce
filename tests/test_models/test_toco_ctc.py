# Copyright (c) OpenMMLab. All rights reserved.
"""ToCo's class-token contrast (CTC) inside :class:`ToCoSegmentor`."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import LabelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT

TOY = osp.join(REPO_ROOT, 'configs', 'toco', 'toco_toy.py')
VOC = osp.join(REPO_ROOT, 'configs', 'toco', 'toco_vitb_voc.py')

pytestmark = pytest.mark.usefixtures('one_thread')


def _set_iter(it):
    MessageHub.get_instance('toco_ctc_test').update_info('iter', it)


def _model(**train_cfg):
    cfg = Config.fromfile(TOY)
    cfg.model.data_preprocessor.size = (48, 48)
    cfg.model.network.backbone.init_cfg = None
    cfg.model.train_cfg.ctc.local_crop_size = 16
    cfg.model.train_cfg.update(train_cfg)
    return MODELS.build(cfg.model).train()


def _batch(model, size=48, views=2):
    torch.manual_seed(0)
    inputs = [
        torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
        for _ in range(2)
    ]
    samples = []
    for i in range(2):
        s = SegDataSample()
        label = torch.zeros(model.num_classes - 1)
        label[i] = label[3] = 1
        s.gt_cls_label = LabelData(data=label)
        s.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                img_box=[0, size, 0, size]))
        if views:
            s.views = torch.randint(
                0, 255, (views, 3, size, size), dtype=torch.uint8)
        samples.append(s)
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True)


def test_ctc_loss_trains_the_projector_and_syncs_the_teacher():
    model = _model()
    assert not bool(model.ctc_teacher.synced)
    data = _batch(model)
    _set_iter(0)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'loss_cls', 'loss_cls_aux', 'loss_ptc', 'loss_ctc', 'loss_seg'
    }
    assert torch.isfinite(losses['loss_ctc'])
    sum(losses.values()).backward()
    grads = [
        p.grad for p in model.network.proj_head.parameters() if p.requires_grad
    ]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    # The first update synchronises the teacher head with the student's.
    assert bool(model.ctc_teacher.synced)
    for t, s in zip(model.ctc_teacher.module.parameters(),
                    model.network.proj_head.parameters()):
        torch.testing.assert_close(t, s, rtol=0, atol=1e-7)
        assert not t.requires_grad


def test_ctc_teacher_update_is_ema_with_m_09_before_the_forward():
    model = _model()
    data = _batch(model)
    _set_iter(0)
    model(**data, mode='loss')
    teacher = [p.clone() for p in model.ctc_teacher.module.parameters()]
    with torch.no_grad():
        for p in model.network.proj_head.parameters():
            if p.requires_grad:
                p.add_(0.5)
    student = [p.clone() for p in model.network.proj_head.parameters()]
    _set_iter(1)
    model(**data, mode='loss')
    for t0, s, (name, t1) in zip(teacher, student,
                                 model.ctc_teacher.module.named_parameters()):
        if name.endswith('original0'):  # frozen g: copied
            torch.testing.assert_close(t1, s)
        else:
            torch.testing.assert_close(t1, 0.9 * t0 + 0.1 * s)
    _set_iter(0)


def test_ctc_gate_and_missing_views():
    model = _model(ctc=dict(start_iter=5))
    data = _batch(model)
    _set_iter(3)
    losses = model(**data, mode='loss')
    assert losses['loss_ctc'].item() == 0
    assert not bool(model.ctc_teacher.synced)  # not run before its gate
    _set_iter(6)  # gate_rule 'after': on when iteration > 5
    assert bool(model(**data, mode='loss')['loss_ctc'].requires_grad)
    no_views = _batch(model, views=0)
    with pytest.raises(ValueError, match='AddView'):
        model(**no_views, mode='loss')
    _set_iter(0)


def test_ctc_needs_a_projector():
    cfg = Config.fromfile(TOY)
    cfg.model.network.proj_head = None
    with pytest.raises(ValueError, match='proj_head'):
        MODELS.build(cfg.model)


def test_ctc_teacher_in_state_dict_restored_bit_exactly():
    model = _model()
    data = _batch(model)
    _set_iter(0)
    model(**data, mode='loss')
    state = model.state_dict()
    assert state['ctc_teacher.synced'].item()
    other = _model()
    other.load_state_dict(state)
    assert bool(other.ctc_teacher.synced)
    for a, b in zip(model.ctc_teacher.state_dict().values(),
                    other.ctc_teacher.state_dict().values()):
        assert torch.equal(a, b)


def test_toco_vitb_with_ctc_parameter_count():
    """ToCo with CTC: about 104.9M parameters, 98.2M trainable (the code's
    105.6M / 98.9M include timm's unused 0.77M classification head)."""
    cfg = Config.fromfile(VOC)
    cfg.model.network.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f'ToCo ViT-B/16 with CTC: {total / 1e6:.2f}M parameters, '
          f'{trainable / 1e6:.2f}M trainable')
    # Measured 104.86M / 98.15M (the code's 98.9M - 0.77M head = 98.13M).
    assert abs(total / 1e6 - 104.9) < 0.1
    assert abs(trainable / 1e6 - 98.2) < 0.1
