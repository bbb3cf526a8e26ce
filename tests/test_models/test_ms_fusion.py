# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from mmseg_wsss.models.postprocess import (fuse_max_over_scales,
                                           fuse_mean_with_bg_power)


def _ramp(x):
    W = x.shape[-1]
    return torch.arange(W, dtype=x.dtype).expand_as(x[:, :1])


def test_max_over_scales_undoes_the_flip():
    # A logit that is not flip-equivariant: fg = image * column index.
    def logit_fn(x):
        fg = x[:, :1] * _ramp(x)
        return torch.cat([torch.zeros_like(fg), fg], dim=1)

    x = torch.rand(2, 3, 4, 6)
    probs = fuse_max_over_scales(logit_fn, x, scales=(1.0, ), flip=True)
    # view + unflipped flip = x * (j + (W-1-j)) = x * (W-1)
    expected_fg = x[:, :1] * 5
    expected = torch.cat([torch.zeros_like(expected_fg), expected_fg],
                         1).softmax(1)
    torch.testing.assert_close(probs, expected)
    no_flip = fuse_max_over_scales(logit_fn, x, scales=(1.0, ), flip=False)
    assert not torch.allclose(no_flip, probs)


def test_max_not_mean_over_scales():
    # fg logit = input height / 4: the largest scale gives the largest.
    def logit_fn(x):
        B, _, h, w = x.shape
        fg = torch.full((B, 1, h, w), h / 4.)
        return torch.cat([torch.zeros_like(fg), fg], dim=1)

    x = torch.zeros(1, 3, 8, 8)
    probs = fuse_max_over_scales(
        logit_fn, x, scales=(1.0, 0.5, 1.5), flip=False)
    assert probs.shape == (1, 2, 8, 8)
    expected = torch.tensor([0., 12 / 4]).softmax(0)  # 1.5 x 8 = 12
    torch.testing.assert_close(probs[0, :, 0, 0], expected)
    # with flip the two views are summed: 2 x 3
    probs = fuse_max_over_scales(logit_fn, x, scales=(1.0, 1.5), flip=True)
    torch.testing.assert_close(probs[0, :, 3, 3],
                               torch.tensor([0., 6.]).softmax(0))


def test_mean_with_bg_power_and_class_cut():
    # Two classes + bg; masks depend on the scale so the mean is visible.
    def mask_fn(x):
        B, _, h, w = x.shape
        bg = torch.full((B, 1, h, w), 0.5 if h == 8 else 0.7)
        a = (1 - bg) * _ramp(x) / (w - 1)
        b = 1 - bg - a
        cls = torch.tensor([[2.0, -4.0]]).expand(B, 2)  # a present, b not
        return torch.cat([bg, a, b], 1), cls

    x = torch.zeros(1, 3, 8, 8)
    out = fuse_mean_with_bg_power(
        mask_fn, x, scales=(1.0, 0.5), flip=True, bg_pow=3, fp_cut=0.1)
    # bg mean over 2 scales x 2 flips = (0.5 + 0.7) / 2 = 0.6 -> 0.216
    torch.testing.assert_close(out[0, 0], torch.full((8, 8), 0.6**3))
    # flip undone and averaged: `a` of a view + its flip is symmetric
    torch.testing.assert_close(out[0, 1], out[0, 1].flip(-1))
    assert torch.all(out[0, 1] > 0)
    # sigmoid(-4) = 0.018 < fp_cut: class b removed
    assert torch.all(out[0, 2] == 0)
    # ground-truth labels instead of predicted presence
    gt = fuse_mean_with_bg_power(
        mask_fn, x, scales=(1.0, ), cls_label=torch.tensor([[0., 1.]]))
    assert torch.all(gt[0, 1] == 0) and torch.all(gt[0, 2] > 0)


@pytest.mark.parametrize('size', [(5, 7)])
def test_out_size(size):
    def logit_fn(x):
        return torch.zeros(x.shape[0], 3, *x.shape[-2:])

    out = fuse_max_over_scales(
        logit_fn, torch.zeros(1, 3, 8, 8), scales=(1.0, ), out_size=size)
    assert out.shape == (1, 3, *size)
    torch.testing.assert_close(out.sum(1), torch.ones(1, *size))


def test_wsss_encoder_decoder_keeps_fused_probabilities():
    from mmengine.config import ConfigDict
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    cfg = ConfigDict(
        type='WSSSEncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[0., 0., 0.], std=[1., 1., 1.]),
        backbone=dict(
            type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
            out_indices=(3, ), strides=(1, 2, 1, 1),
            dilations=(1, 1, 2, 4)),
        decode_head=dict(
            type='FCNHead', in_channels=64, channels=8, num_convs=1,
            num_classes=3, in_index=0),
        test_cfg=dict(
            mode='whole',
            fusion=dict(type='max_over_scales', scales=(1.0, 1.5))))
    model = MODELS.build(cfg).eval()
    x = torch.rand(1, 3, 32, 32)
    meta = dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32))
    with torch.no_grad():
        out = model.predict(x, [SegDataSample(metainfo=meta)])
        expected = fuse_max_over_scales(model._forward, x, scales=(1.0, 1.5))
    probs = out[0].seg_logits.data
    torch.testing.assert_close(probs, expected[0])
    torch.testing.assert_close(probs.sum(0), torch.ones(32, 32))
    assert torch.equal(out[0].pred_sem_seg.data[0], probs.argmax(0))
    model.test_cfg.fusion = dict(type='mean')
    with pytest.raises(ValueError, match='fusion'):
        model.predict(x, [SegDataSample(metainfo=meta)])
