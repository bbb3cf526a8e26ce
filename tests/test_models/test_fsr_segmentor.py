# Copyright (c) OpenMMLab. All rights reserved.
""":class:`FSRSegmentor`: the loss step, its gates, the EMA teacher of the
whole network (update timing, resume) and inference."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import LabelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT

TOY = osp.join(REPO_ROOT, 'configs', 'fsr', 'fsr_toy.py')
VOC = osp.join(REPO_ROOT, 'configs', 'fsr', 'fsr_vitb_voc.py')

pytestmark = pytest.mark.usefixtures('one_thread')


def _set_iter(it):
    MessageHub.get_instance('fsr_test').update_info('iter', it)


@pytest.fixture(autouse=True)
def _reset_iter():
    yield
    _set_iter(0)


def _model(**train_cfg):
    cfg = Config.fromfile(TOY)
    cfg.model.data_preprocessor.size = (48, 48)
    cfg.model.network.backbone.init_cfg = None
    cfg.model.train_cfg.update(train_cfg)
    return MODELS.build(cfg.model).train()


def _batch(model, size=48, views=1, seed=0):
    torch.manual_seed(seed)
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
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        if views:
            s.views = torch.randint(
                0, 255, (views, 3, size, size), dtype=torch.uint8)
        samples.append(s)
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True)


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_loss_items_gates_and_gradients():
    model = _model()
    data = _batch(model)
    _set_iter(0)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'loss_cls', 'loss_cls_aux', 'loss_ptc', 'loss_fsr_class',
        'loss_fsr_patch', 'loss_seg'
    }
    assert losses['loss_seg'].item() == 0  # gate 300, rule 'from'
    assert losses['loss_fsr_class'].item() > 0
    assert losses['loss_fsr_patch'].item() > 0
    sum(losses.values()).backward()
    net = model.network
    assert net.backbone.mask_token.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in net.proj_head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in net.backbone.cls_aggregation.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
    _set_iter(300)  # the code: `(n_iter + 1) <= 300` off, so on at 300
    assert model(**data, mode='loss')['loss_seg'].item() > 0
    # FSR losses end at fsr_iters (the code's weight schedules drop to 0).
    model.train_cfg.fsr_iters = 300
    losses = model(**data, mode='loss')
    assert losses['loss_fsr_class'].item() == 0
    assert losses['loss_fsr_patch'].item() == 0


def test_teacher_update_after_each_step_once_per_iteration():
    """Iteration 0 syncs; iteration n applies the update of n - 1 with
    m[n - 1] (the code updates after the optimiser step of n - 1)."""
    model = _model(teacher=dict(momentum=0.9, schedule='constant'))
    data = _batch(model)
    _set_iter(0)
    model(**data, mode='loss')
    assert bool(model.teacher.synced)
    for t, s in zip(model.teacher.module.parameters(),
                    model.network.parameters()):
        assert torch.equal(t, s)
    with torch.no_grad():
        for p in model.network.parameters():
            if p.requires_grad:
                p.add_(1.0)
    teacher0 = _params(model.teacher.module)
    student1 = _params(model.network)
    model(**data, mode='loss')  # same iteration: no second update
    for a, b in zip(teacher0, model.teacher.module.parameters()):
        assert torch.equal(a, b)
    _set_iter(1)
    model(**data, mode='loss')
    for t0, s1, (name, p), t1 in zip(teacher0, student1,
                                     model.network.named_parameters(),
                                     model.teacher.module.parameters()):
        if p.requires_grad:
            torch.testing.assert_close(t1, t0 * 0.9 + s1 * 0.1)
        else:
            assert torch.equal(t1, s1), name
    model(**data, mode='loss')
    assert int(model.teacher_iter) == 1


def test_teacher_momentum_cosine_schedule_of_the_code():
    model = _model()
    momenta = model.teacher.momenta
    assert momenta(0)[''] == pytest.approx(0.99667)
    assert momenta(3000)[''] == pytest.approx(1.0)
    assert momenta(1500)[''] == pytest.approx(0.99667 + (1 - 0.99667) / 2)


def test_resume_restores_teacher_and_its_iteration_bit_exactly():
    model = _model()
    data = _batch(model)
    for it in range(3):
        _set_iter(it)
        model(**data, mode='loss')
        with torch.no_grad():
            for p in model.network.parameters():
                if p.requires_grad:
                    p.mul_(0.99)
    state = model.state_dict()
    resumed = _model()
    resumed.load_state_dict(state)
    for (k, a), b in zip(model.state_dict().items(),
                         resumed.state_dict().values()):
        assert torch.equal(a, b), k
    # The next iteration moves both teachers identically.
    _set_iter(3)
    model(**data, mode='loss')
    resumed(**data, mode='loss')
    for a, b in zip(model.teacher.state_dict().values(),
                    resumed.teacher.state_dict().values()):
        assert torch.equal(a, b)


def test_uncertainty_masking_after_the_random_phase(monkeypatch):
    model = _model(masking=dict(random_iters=2))
    data = _batch(model)
    calls = []
    real = model.training_cams

    def spy(network, inputs):
        calls.append(inputs)
        return real(network, inputs)

    monkeypatch.setattr(model, 'training_cams', spy)
    _set_iter(1)
    model(**data, mode='loss')
    assert len(calls) == 1  # view 1's CAMs only: random masks need none
    calls.clear()
    _set_iter(2)
    model(**data, mode='loss')
    assert len(calls) == 2  # view 2's aux CAM picks the blocks
    view2 = model.extra_views(data['data_samples'], data['inputs'], 1, '')[0]
    torch.testing.assert_close(calls[0], view2)


def test_masked_view_mask_shape_and_count():
    model = _model()
    mask = model.view2_mask(torch.zeros(2, 3, 48, 48), None, (6, 6))
    # 2x2-patch blocks on a 6x6 grid: 9 blocks, ceil(9 * 0.4) = 4 masked.
    assert mask.shape == (2, 36)
    assert mask.sum(1).tolist() == [16, 16]


def test_needs_views_projector_and_mask_token():
    model = _model()
    with pytest.raises(ValueError, match='AddView'):
        model(**_batch(model, views=0), mode='loss')
    cfg = Config.fromfile(TOY)
    cfg.model.network.proj_head = None
    with pytest.raises(ValueError, match='proj_head'):
        MODELS.build(cfg.model)
    cfg = Config.fromfile(TOY)
    cfg.model.test_cfg.network = 'ema'
    with pytest.raises(ValueError, match='network'):
        MODELS.build(cfg.model)


def test_predict_with_student_or_teacher():
    model = _model()
    data = _batch(model)
    _set_iter(0)
    model(**data, mode='loss')
    with torch.no_grad():
        for p in model.network.decode_head.parameters():
            p.add_(0.3)
    model.eval()
    samples = data['data_samples']
    for s in samples:
        s.set_metainfo(dict(pad_shape=(48, 48)))
    student = model.predict(data['inputs'], samples)[0].seg_logits.data
    model.test_cfg.network = 'teacher'
    teacher = model.predict(data['inputs'], samples)[0].seg_logits.data
    assert student.shape == teacher.shape == (model.num_classes, 48, 48)
    assert not torch.allclose(student, teacher)


def test_fsr_vitb_parameter_count_and_optimizer_groups():
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(VOC)
    cfg.model.network.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    student = sum(p.numel() for p in model.network.parameters())
    print(f'FSR ViT-B/16: {total / 1e6:.2f}M parameters (student '
          f'{student / 1e6:.2f}M + its EMA teacher), {trainable / 1e6:.2f}M '
          'trainable')
    assert total == 2 * student
    # All of the student but the projector's frozen weight-norm g.
    g = model.network.proj_head.last_layer.parametrizations.weight.original0
    assert not g.requires_grad and trainable == student - g.numel()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    by_param = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            by_param[id(p)] = (group['lr'], group['weight_decay'])
    named = dict(model.named_parameters())
    base = 6e-5

    def lr_wd(name):
        return by_param[id(named[name])]

    assert lr_wd('network.backbone.layers.0.attn.attn.in_proj_weight') == (
        base, 0.05)
    assert lr_wd('network.backbone.pos_embed') == (base, 0.)
    assert lr_wd('network.backbone.cls_token') == (base, 0.)
    assert lr_wd('network.backbone.mask_token') == (base, 0.)
    assert lr_wd('network.backbone.ln1.weight') == (base, 0.)
    assert lr_wd('network.decode_head.conv_seg.weight')[0] == \
        pytest.approx(10 * base)
    assert lr_wd('network.proj_head.mlp.0.bias') == (pytest.approx(10 * base),
                                                     0.)
    assert not any(id(p) in by_param for p in model.teacher.parameters())
