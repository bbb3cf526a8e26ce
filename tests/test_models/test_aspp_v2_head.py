# Copyright (c) OpenMMLab. All rights reserved.
"""ASPPV2Head: DeepLab-v2's sum of four dilated 3x3 classifiers."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_wsss.models.heads import ASPPV2Head
from mmseg_wsss.registry import MODELS

pytestmark = pytest.mark.usefixtures('one_thread')


def _head(**kwargs):
    cfg = dict(
        type='ASPPV2Head',
        in_channels=8,
        num_classes=5,
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_parameters_shapes_and_init():
    torch.manual_seed(0)
    head = _head(in_channels=64)
    # Four branches in -> K, 3x3, bias; no conv_seg, nothing else.
    assert not hasattr(head, 'conv_seg')
    assert [b.dilation for b in head.branches] == [(6, 6), (12, 12), (18, 18),
                                                   (24, 24)]
    assert [b.padding for b in head.branches] == [(6, 6), (12, 12), (18, 18),
                                                  (24, 24)]
    names = sorted(n for n, _ in head.named_parameters())
    assert names == sorted(f'branches.{i}.{p}' for i in range(4)
                           for p in ('weight', 'bias'))
    # 4 x (64 * 5 * 9 + 5) = 11,540 parameters.
    assert sum(p.numel() for p in head.parameters()) == 4 * (64 * 5 * 9 + 5)
    for b in head.branches:
        assert b.weight.shape == (5, 64, 3, 3)
        assert torch.all(b.bias == 0)
        # N(0, 0.01): 2,880 samples per branch.
        assert abs(b.weight.std().item() - 0.01) < 0.001
        assert abs(b.weight.mean().item()) < 0.001
    assert head.dropout is None


def test_output_is_the_sum_of_the_branches():
    torch.manual_seed(0)
    head = _head(dilations=(1, 2, 3, 4))
    for b in head.branches:  # non-trivial biases
        torch.nn.init.normal_(b.bias)
    x = torch.randn(2, 8, 7, 9)
    out = head(x)
    assert out.shape == (2, 5, 7, 9)  # same size as the input map
    expected = sum(
        F.conv2d(x, b.weight, b.bias, padding=d, dilation=d)
        for b, d in zip(head.branches, (1, 2, 3, 4)))
    assert torch.allclose(out, expected, atol=1e-6)
    # One branch alone, checked by hand at the centre pixel (3, 4) of a
    # rate-1 3x3 conv.
    b = head.branches[0]
    centre = (x[0, :, 2:5, 3:6] * b.weight[1]).sum() + b.bias[1]
    assert torch.allclose(
        F.conv2d(x, b.weight, b.bias, padding=1)[0, 1, 3, 4],
        centre,
        atol=1e-6)


def test_selects_the_backbone_output_and_trains():
    torch.manual_seed(0)
    head = _head(dilations=(1, 2))
    feats = (torch.randn(2, 4, 6, 6), torch.randn(2, 8, 6, 6))
    assert head(feats).shape == (2, 5, 6, 6)  # in_index=-1: the last
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 24, 24)))
        samples.append(s)
    losses = head.loss(feats, samples, train_cfg={})
    # Logits upsampled from 6 x 6 to the 24 x 24 labels.
    assert set(losses) == {'loss_ce', 'acc_seg'}
    losses['loss_ce'].backward()
    assert all(b.weight.grad is not None for b in head.branches)
    metas = [dict(img_shape=(24, 24), pad_shape=(24, 24))] * 2
    assert head.predict(feats, metas, {}).shape == (2, 5, 24, 24)


def test_rejects_multiple_inputs_and_no_rates():
    with pytest.raises(TypeError, match='single input'):
        ASPPV2Head(
            in_channels=[4, 8],
            num_classes=5,
            in_index=[0, 1],
            input_transform='resize_concat')
    with pytest.raises(ValueError, match='dilation'):
        ASPPV2Head(in_channels=8, num_classes=5, dilations=())


def test_dropout_applies_to_the_input_only_in_training():
    head = _head(dropout_ratio=0.5)
    x = torch.randn(1, 8, 5, 5)
    head.eval()
    assert torch.equal(head(x), head(x))
    expected = sum(
        F.conv2d(x, b.weight, b.bias, padding=b.padding, dilation=b.dilation)
        for b in head.branches)
    assert torch.allclose(head(x), expected, atol=1e-6)
