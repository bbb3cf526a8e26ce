# Copyright (c) OpenMMLab. All rights reserved.
"""Hand-computable checks of FSR's building blocks: the distillation
schedules, the EMA teacher, the DINO head and centre, the class and patch
losses, the uncertainty-guided masking and the class-token aggregation."""
import io
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg_wsss.models.losses import FSRClassLoss, FSRPatchLoss
from mmseg_wsss.models.utils import (ClassTokenAggregation,
                                     CrossAttentionBlock, DINOCenter, DINOHead)
from mmseg_wsss.models.utils import dino_center as dino_center_module
from mmseg_wsss.models.wsss import (EMATeacher, UncertaintyMasking,
                                    at_iteration, ema_momentum,
                                    teacher_temperature)
from mmseg_wsss.registry import MODELS

LOG3 = math.log(3.)


def _entropy(p):
    return -sum(x * math.log(x) for x in p)


# ------------------------------------------------------------ schedules ---


def test_ema_momentum_constant_and_cosine():
    assert ema_momentum(0, 0.9) == 0.9
    assert ema_momentum(12345, 0.9) == 0.9
    assert ema_momentum(7, 0.0) == 0.0
    # FSR code: 0.9995 -> 1.0 over max_iters.
    kw = dict(start=0.9995, end=1.0, max_iters=20000, schedule='cosine')
    assert ema_momentum(0, **kw) == pytest.approx(0.9995, abs=1e-15)
    # Half-way: cos(pi / 2) = 0 -> 1 - 0.0005 / 2.
    assert ema_momentum(10000, **kw) == pytest.approx(0.99975, abs=1e-12)
    assert ema_momentum(20000, **kw) == 1.0
    assert ema_momentum(50000, **kw) == 1.0
    # The code's np.arange(N) / N schedule, element by element.
    n = 8
    expected = 1.0 + 0.5 * (0.996 - 1.0) * (1 +
                                            np.cos(np.pi * np.arange(n) / n))
    got = [
        ema_momentum(i, 0.996, 1.0, max_iters=n, schedule='cosine')
        for i in range(n)
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert all(a <= b for a, b in zip(got, got[1:]))  # increasing


@pytest.mark.parametrize('kwargs', [
    dict(start=1.5),
    dict(start=0.9, end=-0.1),
    dict(start=0.9, schedule='linear'),
    dict(start=0.9, schedule='cosine', max_iters=0),
])
def test_ema_momentum_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        ema_momentum(0, **kwargs)


def test_teacher_temperature_is_numpy_linspace_then_constant():
    # warm-up of 4: 0.04, 0.05, 0.06, 0.07, then 0.07.
    got = [teacher_temperature(i, 4) for i in range(6)]
    expected = list(np.linspace(0.04, 0.07, 4)) + [0.07, 0.07]
    assert got == expected  # bit-exact with the code's array
    # FSR VOC: int(20000 / 8) = 2500.
    assert teacher_temperature(0, 2500) == 0.04
    assert teacher_temperature(2499, 2500) == 0.07
    assert teacher_temperature(1250, 2500) == pytest.approx(
        0.04 + 0.03 * 1250 / 2499, abs=1e-15)
    assert teacher_temperature(10**6, 2500) == 0.07
    # Degenerate warm-ups: np.linspace(a, b, 1) == [a].
    assert teacher_temperature(0, 0) == 0.07
    assert [teacher_temperature(i, 1) for i in range(2)] == [0.04, 0.07]


# ---------------------------------------------------------- EMA teacher ---


class _Net(nn.Module):
    """backbone (2 -> 2) + head (2 -> 1), no bias; hand-set weights."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2, bias=False)
        self.head = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.head(self.backbone(x))


def _set(net, backbone, head):
    with torch.no_grad():
        net.backbone.weight.copy_(torch.tensor(backbone))
        net.head.weight.copy_(torch.tensor(head))


def test_ema_teacher_toco_update_before_forward():
    student = _Net()
    _set(student, [[1., 0.], [0., 1.]], [[2., 4.]])
    teacher = EMATeacher(student, momentum=0.9)
    assert all(not p.requires_grad for p in teacher.parameters())
    with pytest.raises(RuntimeError, match='synchronised'):
        teacher(torch.ones(1, 2))
    # The first update synchronises first: the teacher is the student.
    assert teacher.update(student, iteration=0) == {'': 0.9}
    torch.testing.assert_close(teacher.module.head.weight, student.head.weight)
    # teacher = 0.9 * teacher + 0.1 * student.
    _set(student, [[3., 0.], [0., 1.]], [[12., -6.]])
    teacher.update(student, iteration=1)
    torch.testing.assert_close(teacher.module.backbone.weight,
                               torch.tensor([[1.2, 0.], [0., 1.]]))
    torch.testing.assert_close(teacher.module.head.weight,
                               torch.tensor([[3.0, 3.0]]))
    # Its forward has no gradient even for inputs that need one.
    x = torch.ones(1, 2, requires_grad=True)
    out = teacher(x)
    assert not out.requires_grad
    assert out.item() == pytest.approx(1.2 * 3. + 3.)


def test_ema_teacher_fsr_code_cosine_and_exact_extremes():
    student = _Net()
    _set(student, [[1., 1.], [1., 1.]], [[1., 1.]])
    teacher = EMATeacher(
        student,
        momentum=0.9995,
        end_momentum=1.0,
        schedule='cosine',
        max_iters=100)
    teacher.sync(student)
    assert bool(teacher.synced)
    _set(student, [[3., 3.], [3., 3.]], [[5., 5.]])
    m = teacher.update(student, iteration=0)['']
    assert m == pytest.approx(0.9995)
    torch.testing.assert_close(teacher.module.head.weight,
                               torch.full((1, 2), 0.9995 + 0.0005 * 5.))
    # m = 1 at the end of the schedule: the teacher stays bit-exact.
    before = teacher.module.head.weight.clone()
    assert teacher.update(student, iteration=100) == {'': 1.0}
    assert torch.equal(teacher.module.head.weight, before)
    # m = 0 copies bit-exactly.
    sync = EMATeacher(student, momentum=0.0)
    sync.sync(_Net())
    sync.update(student, iteration=5)
    assert torch.equal(sync.module.head.weight, student.head.weight)


def test_ema_teacher_fsr_paper_groups():
    student = _Net()
    _set(student, [[1., 0.], [0., 1.]], [[1., 1.]])
    teacher = EMATeacher(
        student,
        momentum=0.996,
        end_momentum=1.0,
        schedule='cosine',
        max_iters=10,
        param_groups={'backbone.': dict(momentum=0., schedule='constant')})
    teacher.sync(student)
    _set(student, [[5., 5.], [5., 5.]], [[2., 3.]])
    momenta = teacher.update(student, iteration=0)
    assert momenta == {'': pytest.approx(0.996), 'backbone.': 0.0}
    # Encoder synchronised, head averaged.
    assert torch.equal(teacher.module.backbone.weight, student.backbone.weight)
    torch.testing.assert_close(
        teacher.module.head.weight,
        torch.tensor([[0.996 + 0.004 * 2., 0.996 + 0.004 * 3.]]))
    with pytest.raises(KeyError, match='matches no parameter'):
        EMATeacher(student, param_groups={'neck.': dict(momentum=0.)})
    with pytest.raises(KeyError, match='unknown keys'):
        EMATeacher(student, param_groups={'head.': dict(m=0.)})
    with pytest.raises(ValueError):
        EMATeacher(student, schedule='cosine', max_iters=0)


def test_ema_teacher_copies_frozen_params_and_checks_names():
    head = DINOHead(4, out_dim=3, hidden_dim=5, bottleneck_dim=2)
    teacher = EMATeacher(head, momentum=0.5)
    teacher.sync(head)
    with torch.no_grad():
        for p in head.parameters():
            if p.requires_grad:
                p.add_(1.)
    for _ in range(3):
        teacher.update(head, iteration=0)
    g = teacher.module.last_layer.parametrizations.weight.original0
    assert torch.equal(g, torch.ones_like(g))  # frozen: copied, never moved
    with pytest.raises(KeyError, match='does not match'):
        teacher.update(_Net())


def test_ema_teacher_train_mode():
    student = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    follow = EMATeacher(student)
    frozen = EMATeacher(student, eval_mode=True)
    owner = nn.ModuleDict(dict(a=follow, b=frozen))
    owner.train()
    assert follow.module.training  # FSR: the teacher's drop path is active
    assert not frozen.module.training
    owner.eval()
    assert not follow.module.training and not frozen.module.training


class _Owner(nn.Module):
    """A student network and its EMA teacher, as a segmentor holds them."""

    def __init__(self):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(3, 4), nn.BatchNorm1d(4),
            DINOHead(4, out_dim=5, hidden_dim=6, bottleneck_dim=3))
        self.teacher = EMATeacher(
            self.network,
            momentum=0.9,
            end_momentum=1.0,
            schedule='cosine',
            max_iters=10)


def test_ema_teacher_state_dict_roundtrip_is_bit_exact():
    torch.manual_seed(0)
    owner = _Owner()
    owner.teacher.sync(owner.network)
    for it in range(3):
        owner.network.train()
        owner.network(torch.randn(4, 3))  # moves the BN running stats
        with torch.no_grad():
            for p in owner.network.parameters():
                if p.requires_grad:
                    p.add_(torch.randn_like(p))
        owner.teacher.update(owner.network, iteration=it)
    state = owner.state_dict()
    assert 'teacher.synced' in state
    assert 'teacher.module.0.weight' in state
    assert 'teacher.module.1.running_mean' in state
    assert ('teacher.module.2.last_layer.parametrizations.weight.original1'
            in state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)

    torch.manual_seed(1)
    restored = _Owner()  # other random weights, not synchronised
    assert not bool(restored.teacher.synced)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    for key, value in owner.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    # The restored teacher continues exactly as the original one.
    for model in (owner, restored):
        with torch.no_grad():
            for p in model.network.parameters():
                if p.requires_grad:
                    p.mul_(1.5)
        model.teacher.update(model.network, iteration=3)
    for key, value in owner.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


# ------------------------------------------------------- DINO head/centre ---


def test_dino_head_default_dims():
    fsr = MODELS.build(dict(type='DINOHead', in_dim=768))
    assert [m.weight.shape for m in fsr.mlp
            if isinstance(m, nn.Linear)] == [(2048, 768), (2048, 2048),
                                             (256, 2048)]
    assert [type(m) for m in fsr.mlp][1::2] == [nn.GELU, nn.GELU]
    v = fsr.last_layer.parametrizations.weight.original1
    assert v.shape == (4096, 256) and fsr.last_layer.bias is None
    g = fsr.last_layer.parametrizations.weight.original0
    assert torch.equal(g, torch.ones(4096, 1)) and not g.requires_grad
    for m in fsr.mlp:
        if isinstance(m, nn.Linear):
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
            assert abs(m.weight.std().item() - 0.02) < 2e-3
    ctc = DINOHead(768, out_dim=1024)
    assert ctc(torch.randn(2, 768)).shape == (2, 1024)


def test_dino_head_is_cosine_to_unit_rows():
    head = DINOHead(2, out_dim=2, bottleneck_dim=2, num_layers=1)
    with torch.no_grad():
        head.mlp.weight.copy_(torch.eye(2))
        head.mlp.bias.zero_()
        # v rows (3, 4) and (0, 2): unit rows (0.6, 0.8) and (0, 1).
        head.last_layer.parametrizations.weight.original1.copy_(
            torch.tensor([[3., 4.], [0., 2.]]))
    out = head(torch.tensor([[2., 0.], [5., 5.]]))
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.], [1.4 * r, r]]))
    tokens = torch.randn(2, 3, 2) * 100
    out = head(tokens)
    assert out.shape == (2, 3, 2) and out.abs().max() <= 1 + 1e-6


def test_dino_center_targets_and_update():
    center = DINOCenter(2, momentum=0.9)
    # softmax([0, log 3]) = (1/4, 3/4): logits (0, log 3 / 2) at 0.5.
    probs = center(torch.tensor([[0., 0.5 * LOG3]]), temperature=0.5)
    torch.testing.assert_close(probs, torch.tensor([[0.25, 0.75]]))
    # (B, K): batch mean (2, 3) -> centre 0.1 * (2, 3).
    center.update(torch.tensor([[1., 2.], [3., 4.]]))
    torch.testing.assert_close(center.center, torch.tensor([[0.2, 0.3]]))
    center.update(torch.tensor([[1., 2.], [3., 4.]]))
    torch.testing.assert_close(center.center, torch.tensor([[0.38, 0.57]]))
    # The centre is subtracted: a teacher equal to it is uniform.
    probs = center(center.center.clone(), temperature=0.04)
    torch.testing.assert_close(probs, torch.tensor([[0.5, 0.5]]))
    # (B, N, K): per-image token means (1, 1) and (4, 0) -> (2.5, 0.5).
    patch = DINOCenter(2, momentum=0.9)
    patch.update(torch.tensor([[[0., 0.], [2., 2.]], [[4., 0.], [4., 0.]]]))
    torch.testing.assert_close(patch.center, torch.tensor([[0.25, 0.05]]))
    with pytest.raises(ValueError, match='dims'):
        patch.update(torch.zeros(2, 3))
    assert 'center' in patch.state_dict()


def test_dino_center_all_reduces_sum_and_count(monkeypatch):
    calls = []

    def fake_all_reduce(data, op='sum'):
        # Another rank holds one image whose mean is (10, 10).
        calls.append(op)
        data += torch.tensor([10., 10., 1.])

    monkeypatch.setattr(dino_center_module, 'all_reduce', fake_all_reduce)
    center = DINOCenter(2, momentum=0.9)
    center.update(torch.tensor([[1., 2.], [3., 4.]]))
    assert calls == ['sum']
    # ((1 + 3 + 10) / 3, (2 + 4 + 10) / 3) * 0.1
    torch.testing.assert_close(center.center, torch.tensor([[14 / 30,
                                                             16 / 30]]))


# ---------------------------------------------------------- FSR losses ---


def _teacher_for(p1, temp):
    """Teacher logits whose softmax at ``temp`` (zero centre) is
    (1 - p1, p1)."""
    return torch.tensor([[0., temp * math.log(p1 / (1 - p1))]])


def test_fsr_class_loss_hand_computed():
    loss_fn = FSRClassLoss(out_dim=2, loss_weight=1.0)
    # Student: logits / 0.1 = (0, log 3) -> log_softmax = log(1/4, 3/4).
    student = torch.tensor([[0., 0.1 * LOG3]], requires_grad=True)
    # After the warm-up (tt = 0.07) the teacher targets are (1/4, 3/4):
    # CE = entropy(1/4, 3/4).
    teacher = _teacher_for(0.75, 0.07).requires_grad_()
    loss = loss_fn(student, teacher, iteration=2500)
    assert loss.item() == pytest.approx(_entropy([0.25, 0.75]), abs=1e-6)
    loss.backward()
    assert student.grad is not None and teacher.grad is None
    # The centre moved after the loss: 0.1 * teacher.
    torch.testing.assert_close(loss_fn.center.center, 0.1 * teacher.detach())
    # At iteration 0 (tt = 0.04) with that centre: targets
    # softmax((t - c) / 0.04) = softmax(0.9 * t / 0.04).
    loss0 = loss_fn(
        student.detach(), teacher.detach(), iteration=0, update_center=False)
    z = 0.9 * 0.07 * math.log(3.) / 0.04
    p1 = 1 / (1 + math.exp(-z))
    expected = -((1 - p1) * math.log(0.25) + p1 * math.log(0.75))
    assert loss0.item() == pytest.approx(expected, abs=1e-5)
    # The default weight is FSR's w_class = 0.1.
    assert FSRClassLoss(out_dim=2)(student.detach(), teacher.detach(),
                                   2500).item() == pytest.approx(
                                       0.1 * _entropy([0.25, 0.75]), abs=1e-6)
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(2, 2), torch.zeros(3, 2))


def test_fsr_class_loss_reads_current_iteration():
    loss_fn = FSRClassLoss(out_dim=2, temp_warmup_iters=4)
    with at_iteration(2):
        assert loss_fn.temperature() == pytest.approx(0.06)
    with at_iteration(100):
        assert loss_fn.temperature() == 0.07
    assert MODELS.build(dict(type='FSRClassLoss')).loss_name == \
        'loss_fsr_class'


# Per-token cross-entropies against targets (1/4, 3/4), student temp 0.1:
# A: student / 0.1 = (0, log 3) -> entropy(1/4, 3/4)
# B: student / 0.1 = (0, 0)     -> log 2
# C: student / 0.1 = (log 3, 0) -> -(1/4 log 3/4 + 3/4 log 1/4)
CE_A = _entropy([0.25, 0.75])
CE_B = math.log(2.)
CE_C = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))


def _patch_inputs():
    a, b, c = [0., 0.1 * LOG3], [0., 0.], [0.1 * LOG3, 0.]
    student = torch.tensor([[a, b, c], [c, c, a]], requires_grad=True)
    teacher = _teacher_for(0.75, 0.07).expand(2, 3, 2).clone()
    # Image 0 masks A and B; image 1 masks nothing.
    mask = torch.tensor([[True, True, False], [False, False, False]])
    return student, teacher, mask


def test_fsr_patch_loss_masked_mean_hand_computed():
    student, teacher, mask = _patch_inputs()
    loss_fn = FSRPatchLoss(out_dim=2, loss_weight=1.0)
    loss = loss_fn(student, teacher, mask, iteration=5000)
    # Image 0: (CE_A + CE_B) / 2; image 1: no masked token -> 0.
    assert loss.item() == pytest.approx((CE_A + CE_B) / 2 / 2, abs=1e-6)
    loss.backward()
    assert torch.isfinite(student.grad).all()
    assert torch.equal(student.grad[1], torch.zeros(3, 2))
    assert torch.equal(student.grad[0, 2], torch.zeros(2))
    # The centre follows all teacher tokens, masked or not.
    torch.testing.assert_close(loss_fn.center.center, 0.1 * teacher[0, :1])
    # Paper Eq. 8: the sum over masked tokens.
    paper = FSRPatchLoss(out_dim=2, loss_weight=1.0, reduction='masked_sum')
    assert paper(
        student.detach(), teacher, mask,
        iteration=5000).item() == pytest.approx(
            (CE_A + CE_B) / 2, abs=1e-6)
    # A token with CE_C counts once it is masked.
    mask2 = torch.tensor([[False, False, True], [True, False, False]])
    assert FSRPatchLoss(
        out_dim=2, loss_weight=1.0)(
            student.detach(), teacher, mask2,
            iteration=5000).item() == pytest.approx(
                CE_C, abs=1e-6)


def test_fsr_patch_loss_without_masked_tokens_is_zero_not_nan():
    student, teacher, mask = _patch_inputs()
    loss = FSRPatchLoss(out_dim=2)(
        student, teacher, torch.zeros_like(mask), iteration=0)
    assert loss.item() == 0.
    loss.backward()
    assert torch.equal(student.grad, torch.zeros_like(student))
    with pytest.raises(ValueError, match='mask'):
        FSRPatchLoss(out_dim=2)(student, teacher, mask[:, :2])
    with pytest.raises(ValueError, match='reduction'):
        FSRPatchLoss(reduction='mean')


def test_fsr_losses_compute_in_float32_under_autocast():
    g = torch.Generator().manual_seed(0)
    student = (torch.randn(2, 3, 4, generator=g) * 20).bfloat16()
    teacher = (torch.randn(2, 3, 4, generator=g) * 20).bfloat16()
    mask = torch.tensor([[True, False, True], [False, True, False]])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        patch = FSRPatchLoss(out_dim=4)(student, teacher, mask, iteration=0)
        cls = FSRClassLoss(out_dim=4)(student[:, 0], teacher[:, 0], 0)
    assert patch.dtype == cls.dtype == torch.float32
    torch.testing.assert_close(
        patch,
        FSRPatchLoss(out_dim=4)(student.float(), teacher.float(), mask, 0))
    torch.testing.assert_close(
        cls,
        FSRClassLoss(out_dim=4)(student[:, 0].float(), teacher[:, 0].float(),
                                0))


# -------------------------------------------------------------- masking ---


def _cam_from_blocks(values, block_px=64, grid=7):
    """(1, 1, grid*block_px, grid*block_px) CAM, constant per block."""
    v = torch.as_tensor(values, dtype=torch.float32).reshape(1, 1, grid, grid)
    return v.repeat_interleave(block_px, 2).repeat_interleave(block_px, 3)


def _blocks_of(mask, grid=7, block=4):
    """(B, 784) token mask -> (B, 49) block mask (checking uniformity)."""
    m = mask.reshape(-1, grid, block, grid, block)
    assert (m.all(dim=(2, 4)) == m.any(dim=(2, 4))).all()  # whole blocks
    return m.any(dim=(2, 4)).flatten(1)


def test_masking_code_form_counts_and_random_phase():
    masking = UncertaintyMasking()
    assert (masking.block_size, masking.rounding,
            masking.random_iters) == (4, 'ceil', 4000)
    assert masking.num_masked_blocks(49) == 20  # ceil(19.6)
    g = torch.Generator().manual_seed(0)
    cam = torch.rand(3, 2, 448, 448)
    mask = masking(cam, (28, 28), iteration=0, generator=g)
    assert mask.shape == (3, 784) and mask.dtype == torch.bool
    assert (_blocks_of(mask).sum(dim=1) == 20).all()
    assert (mask.sum(dim=1) == 320).all()
    # Random phase: the top 20 of the uniform noise, the CAM unread.
    noise = torch.rand(3, 49, generator=torch.Generator().manual_seed(0))
    expected = torch.zeros(3, 49, dtype=torch.bool)
    expected.scatter_(1, noise.topk(20, dim=1).indices, True)
    assert torch.equal(_blocks_of(mask), expected)
    # Code: random while (n_iter + 1) <= max_iters // 5.
    assert masking.is_random(3999) and not masking.is_random(4000)
    no_cam = masking(
        None, (28, 28),
        iteration=3999,
        batch_size=3,
        generator=torch.Generator().manual_seed(0))
    assert torch.equal(no_cam, mask)
    with pytest.raises(ValueError, match='CAM'):
        masking(None, (28, 28), iteration=4000, batch_size=3)


def test_masking_prefers_uncertain_blocks():
    masking = UncertaintyMasking()
    values = torch.full((49, ), 0.9)  # confident foreground
    values[:10] = 0.0  # confident background
    uncertain = [3, 11, 17, 20, 26, 30, 33, 40, 44, 48]
    values[uncertain] = 0.5
    cam = _cam_from_blocks(values)
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        blocks = _blocks_of(
            masking(cam, (28, 28), iteration=4000, generator=g))[0]
        assert blocks[uncertain].all()  # all 10 first ...
        assert blocks.sum() == 20  # ... then 10 random confident ones
    # Few uncertain blocks: the rest is random fill.
    few = values.clone()
    few[uncertain[2:]] = 0.9
    blocks = _blocks_of(
        masking(_cam_from_blocks(few), (28, 28), iteration=4000))[0]
    assert blocks[uncertain[:2]].all() and blocks.sum() == 20
    # Many: only uncertain blocks are masked.
    many = torch.full((49, ), 0.5)
    many[:24] = 0.95
    blocks = _blocks_of(
        masking(_cam_from_blocks(many), (28, 28), iteration=4000))[0]
    assert blocks.sum() == 20 and not blocks[:24].any()
    # The thresholds are strict: 0.2 and 0.7 are confident.
    edge = torch.full((49, ), 0.2)
    edge[25:] = 0.7
    masking_all = UncertaintyMasking(mask_ratio=1.0)
    assert masking.uncertain_blocks(_cam_from_blocks(edge),
                                    (28, 28)).sum() == 0
    assert masking_all(_cam_from_blocks(edge), (28, 28), iteration=4000).all()


def test_masking_samples_top_left_pixel_and_class_labels():
    masking = UncertaintyMasking()
    cam = torch.zeros(1, 2, 448, 448)
    cam[0, 0, 0, 0] = 0.5  # block 0: only its top-left pixel uncertain
    cam[0, 0, 1:64, 65:128] = 0.5  # block 1: all but its top-left pixel
    cam[0, 1, 128, 128] = 0.5  # block 16 (2, 2), class 1
    got = masking.uncertain_blocks(cam, (28, 28))[0]
    assert got.nonzero().flatten().tolist() == [0, 16]
    # Class 1 absent: its CAM is ignored.
    got = masking.uncertain_blocks(cam, (28, 28), torch.tensor([[1, 0]]))
    assert got[0].nonzero().flatten().tolist() == [0]
    # Equal to the code's nearest F.interpolate on a divisible grid.
    cam = torch.rand(2, 3, 448, 448)
    value = cam.max(dim=1, keepdim=True).values
    roi = ((value > 0.2) & (value < 0.7)).float()
    ref = F.interpolate(roi, size=(7, 7), mode='nearest').flatten(1) > 0.5
    assert torch.equal(masking.uncertain_blocks(cam, (28, 28)), ref)


def test_masking_is_deterministic_under_a_generator():
    masking = UncertaintyMasking()
    cam = torch.rand(2, 3, 448, 448)

    def draw(seed):
        return masking(
            cam, (28, 28),
            iteration=9000,
            generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_masking_paper_form_and_uneven_grid():
    paper = UncertaintyMasking(form='paper')
    assert (paper.block_size, paper.rounding,
            paper.random_iters) == (1, 'floor', 0)
    # Token-level CAM (28x28), 100 uncertain tokens: all masked, 313 total.
    value = torch.full((784, ), 0.9)
    uncertain = torch.randperm(
        784, generator=torch.Generator().manual_seed(0))[:100]
    value[uncertain] = 0.4
    mask = paper(value.reshape(1, 1, 28, 28), (28, 28), iteration=0)
    assert mask.sum() == 313  # floor(784 * 0.4)
    assert mask[0, uncertain].all()
    # 9x9 tokens in 4x4 blocks: a 3x3 block grid cut at the edge.
    code = UncertaintyMasking()
    mask = code(torch.rand(2, 1, 144, 144), (9, 9), iteration=0)
    assert mask.shape == (2, 81)
    assert code.block_grid((9, 9)) == (3, 3)
    assert code.num_masked_blocks(9) == 4  # ceil(3.6)
    with pytest.raises(ValueError):
        UncertaintyMasking(form='beit')
    with pytest.raises(ValueError):
        UncertaintyMasking(rounding='round')


# ---------------------------------------------------- class aggregation ---


def _reference_block(block, q, x):
    """Paper Eq. 5-6 with explicit tensor ops (q: (B, 1, D), x: (B, N, D))."""
    D, H = block.embed_dims, block.num_heads
    w, b = block.attn.in_proj_weight, block.attn.in_proj_bias
    nq, nx = block.norm1(q), block.norm1(x)
    Q = nq @ w[:D].t() + b[:D]
    K = nx @ w[D:2 * D].t() + b[D:2 * D]
    V = nx @ w[2 * D:].t() + b[2 * D:]

    def heads(t):
        return t.reshape(t.shape[0], t.shape[1], H, D // H).transpose(1, 2)

    attn = (heads(Q) @ heads(K).transpose(-1, -2)) / math.sqrt(D // H)
    out = (attn.softmax(-1) @ heads(V)).transpose(1, 2).reshape(q.shape)
    q = q + block.attn.out_proj(out)
    fc1, fc2 = block.ffn.layers[0][0], block.ffn.layers[1]
    return q + fc2(F.gelu(fc1(block.norm2(q))))


def test_cross_attention_block_matches_equations():
    torch.manual_seed(0)
    block = CrossAttentionBlock(8, 2)
    q, x = torch.randn(2, 1, 8), torch.randn(2, 5, 8)
    torch.testing.assert_close(block(q, x), _reference_block(block, q, x))
    keys = set(block.state_dict())
    assert {
        'norm1.weight', 'attn.in_proj_weight', 'attn.out_proj.weight',
        'ffn.layers.0.0.weight', 'ffn.layers.1.weight'
    } <= keys


def test_aggregation_mask_exclude_vs_none():
    torch.manual_seed(0)
    exclude = ClassTokenAggregation(8, 2, aggregation_mask='exclude')
    none = ClassTokenAggregation(8, 2)
    none.load_state_dict(exclude.state_dict())
    assert len(exclude.blocks) == 2 and none.aggregation_mask == 'none'
    cls = torch.randn(1, 1, 8)
    tokens = torch.randn(2, 6, 8)
    mask = torch.tensor([[False, True, False, True, False, False],
                         [True, False, False, False, False, False]])
    changed = tokens.clone()
    changed[mask] = torch.randn(int(mask.sum()), 8) * 5
    out = exclude(cls, tokens, mask)
    assert out.shape == (2, 8)
    # 'exclude': a masked token has weight exactly 0.
    assert torch.equal(exclude(cls, changed, mask), out)
    # ... i.e. the same as aggregating the unmasked tokens only.
    for b in range(2):
        torch.testing.assert_close(
            none(cls, tokens[b:b + 1, ~mask[b]])[0], out[b])
    # 'none' (the code): every token counts, the mask is not read.
    ref = none(cls, tokens, mask)
    assert torch.equal(ref, none(cls, tokens))
    assert not torch.allclose(none(cls, changed, mask), ref, atol=1e-3)


def test_aggregation_all_masked_image_stays_finite():
    torch.manual_seed(0)
    agg = ClassTokenAggregation(8, 2, aggregation_mask='exclude')
    cls = nn.Parameter(torch.randn(1, 1, 8))
    tokens = torch.randn(2, 4, 8, requires_grad=True)
    mask = torch.tensor([[True] * 4, [False, True, True, True]])
    out = agg(cls, tokens, mask)
    assert torch.isfinite(out).all()
    ref = ClassTokenAggregation(8, 2)
    ref.load_state_dict(agg.state_dict())
    torch.testing.assert_close(out[0], ref(cls, tokens[:1])[0])
    out.sum().backward()
    assert cls.grad is not None and torch.isfinite(tokens.grad).all()
    built = MODELS.build(dict(type='ClassTokenAggregation'))
    assert built.blocks[0].attn.num_heads == 12
