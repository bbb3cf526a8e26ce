# Copyright (c) OpenMMLab. All rights reserved.
"""Hand-computable checks of the shared CAM core (``models/wsss/cam.py``)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import LabelData
from mmseg.structures import SegDataSample

from mmseg_wsss.models.wsss import (IGNORE_INDEX, cam_from_weights,
                                    cam_score_map, cam_to_label,
                                    mask_outside_box, multi_scale_cam,
                                    normalize_cam, pool_features,
                                    stack_cls_labels)
from mmseg_wsss.models.wsss.cam import CAM_EPS

# ---------------------------------------------------------------- pooling ---


def test_pool_features_gap_gmp():
    feat = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)
    feat[0, 1, 1, 2] = 100.
    feat[1, 2, 0, 0] = -50.
    gap = pool_features(feat, 'gap')
    gmp = pool_features(feat, 'gmp')
    assert gap.shape == gmp.shape == (2, 3, 1, 1)
    torch.testing.assert_close(gap[..., 0, 0], feat.mean(dim=(2, 3)))
    torch.testing.assert_close(gmp[..., 0, 0], feat.amax(dim=(2, 3)))
    assert gmp[0, 1, 0, 0].item() == 100.
    # (0+1+...+7)/8 = 3.5 for the first map
    assert gap[0, 0, 0, 0].item() == pytest.approx(3.5)
    assert pool_features(feat).shape == (2, 3, 1, 1)  # default 'gap'


def test_pool_features_invalid():
    with pytest.raises(ValueError, match='gap'):
        pool_features(torch.zeros(1, 1, 2, 2), 'avg')


# ------------------------------------------------------------ raw CAMs -----


@pytest.mark.parametrize('weight_dims', [2, 4])
def test_cam_from_weights_matches_einsum(weight_dims):
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 5, generator=g, dtype=torch.float64)
    expected = torch.einsum('bdhw,cd->bchw', feat, weight)
    w = weight if weight_dims == 2 else weight[:, :, None, None]
    cam = cam_from_weights(feat, w)
    assert cam.shape == (2, 3, 3, 4)
    torch.testing.assert_close(cam, expected)
    # Not rectified: negative values survive.
    assert (cam < 0).any()


def test_cam_from_weights_hand_case():
    feat = torch.tensor([[[[1., 2.]], [[3., -4.]]]])  # (1, 2, 1, 2)
    weight = torch.tensor([[1., 1.], [2., -1.]])
    cam = cam_from_weights(feat, weight)
    # class 0: [1+3, 2-4]; class 1: [2-3, 4+4]
    expected = torch.tensor([[[[4., -2.]], [[-1., 8.]]]])
    torch.testing.assert_close(cam, expected)


# --------------------------------------------------------- normalisation ---


def test_normalize_cam_exact_values():
    cam = torch.tensor([[[[1., 2.], [3., 5.]], [[0., 0.], [0., 2.]]]],
                       dtype=torch.float64)
    out = normalize_cam(cam)
    # shift by min (1 resp. 0), divide by max of shifted (4 resp. 2) + eps
    exp0 = torch.tensor([[0., 1.], [2., 4.]], dtype=torch.float64)
    exp0 /= 4 + 1e-5
    exp1 = torch.tensor([[0., 0.], [0., 2.]], dtype=torch.float64)
    exp1 /= 2 + 1e-5
    torch.testing.assert_close(out[0, 0], exp0, rtol=0, atol=1e-15)
    torch.testing.assert_close(out[0, 1], exp1, rtol=0, atol=1e-15)
    assert CAM_EPS == 1e-5
    # The max is strictly below 1 because of eps.
    assert out.max().item() < 1.0
    assert out.max().item() == pytest.approx(4 / (4 + 1e-5), abs=1e-15)


def test_normalize_cam_eps_and_constant_map():
    cam = torch.tensor([[[[2., 2.], [2., 2.]]]], dtype=torch.float64)
    torch.testing.assert_close(normalize_cam(cam), torch.zeros_like(cam))
    small = torch.tensor([[[[0., 1e-5]]]], dtype=torch.float64)
    # (1e-5 - 0) / (1e-5 + 1e-5) = 0.5
    assert normalize_cam(small)[0, 0, 0, 1].item() == pytest.approx(0.5)
    # eps is a parameter
    out = normalize_cam(
        torch.tensor([[[[0., 1.]]]], dtype=torch.float64), eps=1.0)
    assert out[0, 0, 0, 1].item() == pytest.approx(0.5)


def test_normalize_cam_per_image_and_class():
    g = torch.Generator().manual_seed(1)
    cam = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64) * 7 - 2
    out = normalize_cam(cam)
    for b in range(2):
        for c in range(3):
            m = cam[b, c]
            exp = (m - m.min()) / (m.max() - m.min() + 1e-5)
            torch.testing.assert_close(out[b, c], exp)
    assert out.amin(dim=(2, 3)).abs().max().item() == 0.0


# ---------------------------------------------------------- multi-scale ----

H = W = 8


def _ramp(width, lo=-3., hi=1., dtype=torch.float64):
    return torch.linspace(lo, hi, width, dtype=dtype)


def _add_ramp_cam_fn(x):
    """A CAM function that is NOT flip-equivariant: channel 0 of the input
    plus a fixed left-to-right ramp over the columns."""
    return x[:, :1] + _ramp(x.shape[-1])


def _inputs(b=2):
    g = torch.Generator().manual_seed(3)
    return torch.randn(b, 3, H, W, generator=g, dtype=torch.float64)


def test_multi_scale_cam_no_flip_identity():
    x = _inputs()
    out = multi_scale_cam(_add_ramp_cam_fn, x, flip=False, normalize=False)
    torch.testing.assert_close(out, F.relu(x[:, :1] + _ramp(W)))


@pytest.mark.parametrize('flip_merge', ['max', 'sum'])
def test_multi_scale_cam_flip_is_unflipped(flip_merge):
    x = _inputs()
    ramp = _ramp(W)
    out = multi_scale_cam(
        _add_ramp_cam_fn, x, flip=True, flip_merge=flip_merge, normalize=False)
    view = x[:, :1] + ramp
    # cam_fn(flip(x)) = flip(x0) + ramp; un-flipped: x0 + flip(ramp).
    unflipped = x[:, :1] + ramp.flip(0)
    if flip_merge == 'max':
        expected = F.relu(torch.maximum(view, unflipped))
    else:
        expected = F.relu(view + unflipped)
    torch.testing.assert_close(out, expected)
    # A merge without un-flipping would differ (the input is asymmetric).
    wrong = F.relu(torch.maximum(view, x[:, :1].flip(-1) + ramp)) \
        if flip_merge == 'max' else F.relu(view + x[:, :1].flip(-1) + ramp)
    assert not torch.allclose(out, wrong)


@pytest.mark.parametrize('flip', [True, False])
def test_multi_scale_cam_first_view_is_reused(flip):
    """A given scale-1.0 CAM of the inputs stands in for cam_fn's: same
    result, and cam_fn sees only the flipped view at that scale."""
    x = _inputs(b=2)
    seen = []

    def cam_fn(v):
        seen.append(v.shape[0])
        return _add_ramp_cam_fn(v)

    kwargs = dict(scales=(1.0, 0.5), flip=flip, normalize=False)
    expected = multi_scale_cam(cam_fn, x, **kwargs)
    assert seen == ([4, 4] if flip else [2, 2])
    seen.clear()
    out = multi_scale_cam(cam_fn, x, first_view=_add_ramp_cam_fn(x), **kwargs)
    assert seen == ([2, 4] if flip else [2])
    torch.testing.assert_close(out, expected)


def test_multi_scale_cam_flip_batch_layout():
    """cam_fn sees the B views, then their B flips, in one batch."""
    x = _inputs(b=3)
    seen = []

    def cam_fn(inp):
        seen.append(inp.clone())
        return inp[:, :2]

    multi_scale_cam(cam_fn, x, flip=True, normalize=False)
    assert len(seen) == 1 and seen[0].shape == (6, 3, H, W)
    torch.testing.assert_close(seen[0][:3], x)
    torch.testing.assert_close(seen[0][3:], x.flip(-1))


def test_multi_scale_cam_relu_after_flip_merge():
    # view = -3 everywhere, un-flipped flip = +1 everywhere (left half /
    # right half swap is irrelevant for constants): sum then ReLU gives 0,
    # ReLU then sum would give 1.
    x = torch.zeros(1, 3, H, W, dtype=torch.float64)

    def cam_fn(inp):
        b = inp.shape[0] // 2
        vals = torch.tensor([-3.] * b + [1.] * b, dtype=inp.dtype)
        return vals[:, None, None, None].expand(-1, 1, *inp.shape[-2:])

    out = multi_scale_cam(
        cam_fn, x, flip=True, flip_merge='sum', normalize=False)
    torch.testing.assert_close(out,
                               torch.zeros(1, 1, H, W, dtype=torch.float64))
    out = multi_scale_cam(
        cam_fn, x, flip=True, flip_merge='max', normalize=False)
    torch.testing.assert_close(out,
                               torch.ones(1, 1, H, W, dtype=torch.float64))


def _size_dependent_cam_fn(values):
    """Constant CAM whose value depends on the input width."""

    def cam_fn(inp):
        v = values[inp.shape[-1]]
        return torch.full(
            (inp.shape[0], 2) + inp.shape[-2:], v, dtype=inp.dtype)

    return cam_fn


@pytest.mark.parametrize('scale_merge,expected', [('sum', 5.), ('max', 3.)])
def test_multi_scale_cam_scale_merge_and_relu(scale_merge, expected):
    # widths: scale 1 -> 8 (value 2), 0.5 -> 4 (value 3), 1.5 -> 12 (-4).
    # ReLU comes before the scale merge, so -4 adds nothing.
    cam_fn = _size_dependent_cam_fn({8: 2., 4: 3., 12: -4.})
    x = _inputs(b=2)
    out = multi_scale_cam(
        cam_fn,
        x,
        scales=(1.0, 0.5, 1.5),
        flip=False,
        scale_merge=scale_merge,
        normalize=False)
    assert out.shape == (2, 2, H, W)
    torch.testing.assert_close(out, torch.full_like(out, expected))


def test_multi_scale_cam_resizes_inputs_and_outputs():
    x = _inputs(b=1)
    sizes = []

    def cam_fn(inp):
        sizes.append(tuple(inp.shape))
        # a coarse CAM (stride 2), as a backbone would give
        return inp[:, :3, ::2, ::2]

    out = multi_scale_cam(cam_fn, x, scales=(1.0, 0.5, 1.5), flip=True)
    assert sizes == [(2, 3, 8, 8), (2, 3, 4, 4), (2, 3, 12, 12)]
    assert out.shape == (1, 3, H, W)
    # Scale 0.5 input is the bilinear resize of the input.
    got = []
    multi_scale_cam(
        lambda t: got.append(t) or t, x, scales=(0.5, ), flip=False)
    torch.testing.assert_close(
        got[0],
        F.interpolate(x, size=(4, 4), mode='bilinear', align_corners=False))


def test_multi_scale_cam_normalised_output():
    x = _inputs()
    raw = multi_scale_cam(
        _add_ramp_cam_fn, x, scales=(1.0, 0.5), flip=True, normalize=False)
    out = multi_scale_cam(_add_ramp_cam_fn, x, scales=(1.0, 0.5), flip=True)
    torch.testing.assert_close(out, normalize_cam(raw))
    assert out.min().item() >= 0 and out.max().item() < 1


def test_multi_scale_cam_matches_toco_reference():
    """Compare with a literal re-statement of ToCo's multi_scale_cam2."""
    g = torch.Generator().manual_seed(5)
    weight = torch.randn(3, 4, generator=g, dtype=torch.float64)
    proj = torch.randn(4, 3, generator=g, dtype=torch.float64)

    def cam_fn(inp):
        # a non-linear, position-dependent "network" (not flip-equivariant)
        feat = torch.einsum('dc,bchw->bdhw', proj, inp).tanh()
        feat = feat + _ramp(inp.shape[-1], 0., 1.)
        return cam_from_weights(feat, weight)

    x = _inputs()
    scales = (1.0, 0.5, 1.5)
    b, _, h, w = x.shape
    cams = None
    for s in scales:
        xs = x if s == 1.0 else F.interpolate(
            x,
            size=(int(h * s), int(w * s)),
            mode='bilinear',
            align_corners=False)
        c = cam_fn(torch.cat([xs, xs.flip(-1)], dim=0))
        c = F.interpolate(c, size=(h, w), mode='bilinear', align_corners=False)
        c = F.relu(torch.max(c[:b], c[b:].flip(-1)))
        cams = c if cams is None else cams + c
    cams = cams - F.adaptive_max_pool2d(-cams, (1, 1)) * -1
    cams = cams / (F.adaptive_max_pool2d(cams, (1, 1)) + 1e-5)
    out = multi_scale_cam(cam_fn, x, scales=scales)
    torch.testing.assert_close(out, cams)


def test_multi_scale_cam_invalid_merge():
    with pytest.raises(ValueError):
        multi_scale_cam(_add_ramp_cam_fn, _inputs(), flip_merge='mean')
    with pytest.raises(ValueError):
        multi_scale_cam(_add_ramp_cam_fn, _inputs(), scale_merge='avg')


# ------------------------------------------------------------ cam_to_label --

# A crafted 1x2x2x3 map. Strongest class per pixel (value):
#   (0,0) cls1 0.9 | (0,1) cls1 0.7 (= high) | (0,2) cls1 0.25 (= low)
#   (1,0) cls1 0.5 (= bkg) | (1,1) cls2 0.6 | (1,2) cls2 0.71
CAM = torch.tensor([[[[0.9, 0.7, 0.25], [0.5, 0.1, 0.0]],
                     [[0.2, 0.3, 0.1], [0.4, 0.6, 0.71]]]])
BOTH = torch.tensor([[1., 1.]])
IGN = IGNORE_INDEX


def _t(rows):
    return torch.tensor(rows, dtype=torch.int64)


def test_cam_to_label_evaluation():
    label = cam_to_label(CAM, BOTH, bkg_thr=0.5)
    assert label.dtype == torch.int64 and label.shape == (1, 2, 3)
    # value == bkg_thr is background
    assert torch.equal(label, _t([[[1, 1, 0], [0, 2, 2]]]))


def test_cam_to_label_training():
    label = cam_to_label(CAM, BOTH, low_thr=0.25, high_thr=0.7)
    # fg > high; bg <= low; ignore in between (0.7 == high -> ignore,
    # 0.25 == low -> background)
    assert torch.equal(label, _t([[[1, IGN, 0], [IGN, IGN, 2]]]))


def test_cam_to_label_low_above_high_order():
    # Applied in the code's order (<= high -> 255, then <= low -> 0): a low
    # threshold above the high one makes everything <= low background.
    label = cam_to_label(CAM, BOTH, low_thr=0.8, high_thr=0.5)
    assert torch.equal(label, _t([[[1, 0, 0], [0, 0, 0]]]))


def test_cam_to_label_absent_classes_zeroed():
    only1 = torch.tensor([[1., 0.]])
    assert torch.equal(
        cam_to_label(CAM, only1, bkg_thr=0.5), _t([[[1, 1, 0], [0, 0, 0]]]))
    assert torch.equal(
        cam_to_label(CAM, only1, low_thr=0.25, high_thr=0.7),
        _t([[[1, IGN, 0], [IGN, 0, 0]]]))
    only2 = torch.tensor([[0., 1.]])
    assert torch.equal(
        cam_to_label(CAM, only2, bkg_thr=0.5), _t([[[0, 0, 0], [0, 2, 2]]]))
    none = torch.zeros(1, 2)
    assert torch.equal(
        cam_to_label(CAM, none, bkg_thr=0.5),
        torch.zeros(1, 2, 3).long())
    # input is not modified
    assert CAM[0, 1, 1, 2].item() == pytest.approx(0.71)


def test_cam_to_label_per_image_thresholds():
    cam = CAM.repeat(2, 1, 1, 1)
    labels = BOTH.repeat(2, 1)
    out = cam_to_label(cam, labels, bkg_thr=torch.tensor([0.5, 0.65]))
    assert torch.equal(out[0], _t([[1, 1, 0], [0, 2, 2]]))
    assert torch.equal(out[1], _t([[1, 1, 0], [0, 0, 2]]))
    out = cam_to_label(
        cam,
        labels,
        low_thr=torch.tensor([0.25, 0.5]),
        high_thr=torch.tensor([0.7, 0.6]))
    assert torch.equal(out[0], _t([[1, IGN, 0], [IGN, IGN, 2]]))
    # image 2: fg > 0.6, bg <= 0.5 (0.6 == high -> ignore)
    assert torch.equal(out[1], _t([[1, 1, 0], [0, IGN, 2]]))


def test_cam_to_label_img_box():
    out = cam_to_label(CAM, BOTH, bkg_thr=0.5, img_box=[[0, 1, 1, 3]])
    assert torch.equal(out, _t([[[IGN, 1, 0], [IGN, IGN, IGN]]]))
    out = cam_to_label(
        CAM,
        BOTH,
        low_thr=0.25,
        high_thr=0.7,
        img_box=[np.array([1, 2, 0, 2], dtype=np.int64)])
    assert torch.equal(out, _t([[[IGN, IGN, IGN], [IGN, IGN, IGN]]]))
    out = cam_to_label(
        CAM, BOTH, low_thr=0.25, high_thr=0.7, img_box=[[0, 2, 0, 3]])
    assert torch.equal(out, _t([[[1, IGN, 0], [IGN, IGN, 2]]]))


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(low_thr=0.25),
    dict(high_thr=0.7),
    dict(bkg_thr=0.5, low_thr=0.25, high_thr=0.7),
])
def test_cam_to_label_mode_errors(kwargs):
    with pytest.raises(ValueError, match='bkg_thr'):
        cam_to_label(CAM, BOTH, **kwargs)


def test_cam_to_label_mixed_partial_modes_raise():
    with pytest.raises(ValueError):
        cam_to_label(CAM, BOTH, bkg_thr=0.5, low_thr=0.25)


# -------------------------------------------------------- mask_outside_box -


def test_mask_outside_box():
    label = torch.arange(2 * 3 * 4).reshape(2, 3, 4)
    orig = label.clone()
    out = mask_outside_box(label, [[1, 3, 0, 2], None], ignore_index=99)
    assert torch.equal(label, orig)  # a new tensor
    exp0 = torch.full((3, 4), 99)
    exp0[1:3, 0:2] = orig[0, 1:3, 0:2]
    assert torch.equal(out[0], exp0)
    assert torch.equal(out[1], orig[1])
    # numpy / tensor boxes, default ignore 255, empty box
    out = mask_outside_box(
        label, [np.array([0, 3, 0, 4]),
                torch.tensor([0, 0, 0, 0])])
    assert torch.equal(out[0], orig[0])
    assert (out[1] == 255).all()


# ----------------------------------------------------------- cam_score_map -


def test_cam_score_map_matches_cam_to_label():
    g = torch.Generator().manual_seed(7)
    cam = torch.rand(3, 4, 6, 5, generator=g)
    # exact ties with the background score
    cam[0, :, 0, 0] = 0.5
    cam[1, 2, 1, 1] = 0.3
    cam[1, :2, 1, 1] = 0.1
    cam[1, 3, 1, 1] = 0.0
    cls = torch.tensor([[1., 0., 1., 1.], [0., 1., 1., 0.], [0., 0., 0., 1.]])
    for bkg in (0.5, torch.tensor([0.5, 0.3, 0.45])):
        scores = cam_score_map(cam, cls, bkg)
        assert scores.shape == (3, 5, 6, 5)
        exp = cam_to_label(cam, cls, bkg_thr=bkg)
        assert torch.equal(scores.argmax(dim=1), exp)
    scores = cam_score_map(cam, cls, torch.tensor([0.5, 0.3, 0.45]))
    # background channel constant per image, absent classes score 0
    assert (scores[1, 0] == 0.3).all()
    assert (scores[0, 2] == 0).all() and (scores[2, 1:4] == 0).all()
    torch.testing.assert_close(scores[0, 1], cam[0, 0])
    # ties go to background
    assert cam_to_label(cam, cls, bkg_thr=0.5)[0, 0, 0].item() == 0
    assert cam_score_map(cam, cls, 0.5).argmax(1)[0, 0, 0].item() == 0
    assert cam_to_label(
        cam, cls, bkg_thr=torch.tensor([0.5, 0.3, 0.45]))[1, 1, 1].item() == 0


# --------------------------------------------------------- stack_cls_labels -


def _sample(label=None, path='a.jpg'):
    s = SegDataSample(metainfo=dict(img_path=path))
    if label is not None:
        s.gt_cls_label = LabelData(data=torch.tensor(label))
    return s


def test_stack_cls_labels():
    out = stack_cls_labels([_sample([1., 0., 1.]), _sample([0., 1., 0.])])
    assert torch.equal(out, torch.tensor([[1., 0., 1.], [0., 1., 0.]]))


def test_stack_cls_labels_missing():
    with pytest.raises(KeyError) as info:
        stack_cls_labels([_sample([1., 0.]), _sample(None, 'x/img7.jpg')])
    msg = str(info.value)
    assert 'Data sample 1' in msg
    assert 'x/img7.jpg' in msg
    assert 'gt_cls_label' in msg and 'PackWSSSInputs' in msg
