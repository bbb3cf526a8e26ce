# Copyright (c) OpenMMLab. All rights reserved.
"""Checks of the dilated-neighbour machinery, PAR and ToCo's two-constant
background refinement (``models/wsss/{dilated_neighbors,par}.py``)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_wsss.models.wsss.dilated_neighbors import (dilated_neighbor_sum,
                                                      get_dilated_neighbors,
                                                      neighbor_distances,
                                                      neighbor_offsets,
                                                      num_neighbors)
from mmseg_wsss.models.wsss import PAR, refine_cams_with_bkg

IGNORE = 255
SQ2 = math.sqrt(2)

pytestmark = pytest.mark.usefixtures('one_thread')

# ------------------------------------------------------- dilated neighbours --


def test_offsets_and_distances():
    offs = neighbor_offsets((1, 3))
    assert num_neighbors((1, 3)) == len(offs) == 16
    # Row-major 3x3 minus the centre, dilation-major.
    assert offs[:8] == [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1),
                        (1, 0), (1, 1)]
    assert offs[8:] == [(3 * dy, 3 * dx) for dy, dx in offs[:8]]
    dist = neighbor_distances((1, 3), dtype=torch.float64)
    diag = [SQ2, 1, SQ2, 1, 1, SQ2, 1, SQ2]
    torch.testing.assert_close(
        dist, torch.tensor(diag + [3 * v for v in diag], dtype=torch.float64))
    # With the centre: 9 per dilation, centre (distance 0) at index 4.
    offs_c = neighbor_offsets((2, 5), include_center=True)
    assert num_neighbors((2, 5), include_center=True) == len(offs_c) == 18
    assert offs_c[4] == offs_c[13] == (0, 0)
    dist_c = neighbor_distances((2, 5), include_center=True)
    assert dist_c[4] == dist_c[13] == 0
    assert dist_c[0].item() == pytest.approx(2 * SQ2)
    with pytest.raises(ValueError):
        neighbor_offsets((1, 0))
    with pytest.raises(ValueError):
        neighbor_offsets(())


@pytest.mark.parametrize('include_center', [False, True])
def test_neighbors_match_double_loop(include_center):
    """Replicate padding == index clamping, also for dilation > H, W."""
    H, W = 3, 4
    dilations = (1, 2, 5)
    x = torch.arange(2 * 2 * H * W, dtype=torch.float64).reshape(2, 2, H, W)
    out = get_dilated_neighbors(x, dilations, include_center)
    offs = neighbor_offsets(dilations, include_center)
    assert out.shape == (2, 2, len(offs), H, W)
    expected = torch.empty_like(out)
    for n, (dy, dx) in enumerate(offs):
        for i in range(H):
            for j in range(W):
                ii = min(max(i + dy, 0), H - 1)
                jj = min(max(j + dx, 0), W - 1)
                expected[:, :, n, i, j] = x[:, :, ii, jj]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # Spot check: top-left pixel, up-left neighbour at dilation 1 is itself.
    assert out[0, 0, 0, 0, 0] == x[0, 0, 0, 0]
    with pytest.raises(ValueError):
        get_dilated_neighbors(x[0], dilations)


def test_neighbor_sum_matches_stack_and_backprops():
    g = torch.Generator().manual_seed(0)
    dilations = (1, 3)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    for wc in (1, 3):
        w = torch.rand(2, wc, 16, 5, 6, generator=g, dtype=torch.float64)
        expected = (get_dilated_neighbors(x, dilations) * w).sum(2)
        torch.testing.assert_close(
            dilated_neighbor_sum(x, w, dilations), expected)
    xg = x.clone().requires_grad_()
    dilated_neighbor_sum(xg, w, dilations).sum().backward()
    xe = x.clone().requires_grad_()
    (get_dilated_neighbors(xe, dilations) * w).sum().backward()
    torch.testing.assert_close(xg.grad, xe.grad)
    with pytest.raises(ValueError, match='weights'):
        dilated_neighbor_sum(x, w[:, :, :8], dilations)


# -------------------------------------------------------------------- PAR --


def _unbiased_std(values):
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m)**2 for v in values) / (len(values) - 1))


def test_positional_affinity_hand_case():
    # One dilation: 4 axis neighbours at 1, 4 diagonals at sqrt(2); mean
    # (1 + sqrt2) / 2, every deviation (sqrt2 - 1) / 2, so the unbiased std
    # is (sqrt2 - 1) / 2 * sqrt(8 / 7).
    par = PAR(dilations=(1, ), w1=0.3)
    s = (SQ2 - 1) / 2 * math.sqrt(8 / 7)
    ax, dg = -(1 / s / 0.3)**2, -(SQ2 / s / 0.3)**2
    pos = par.positional_affinity(torch.float64)
    torch.testing.assert_close(
        pos, torch.tensor([dg, ax, dg, ax, ax, dg, ax, dg],
                          dtype=torch.float64))
    # ~-227 vs ~-453: the softmax keeps only the 4 axis neighbours.
    torch.testing.assert_close(
        pos.softmax(0),
        torch.tensor([0, .25, 0, .25, .25, 0, .25, 0], dtype=torch.float64))

    # The default dilation list, from the formula written out.
    par = PAR()
    dists = [
        d * f for d in (1, 2, 4, 8, 12, 24)
        for f in (SQ2, 1, SQ2, 1, 1, SQ2, 1, SQ2)
    ]
    s = _unbiased_std(dists)
    expected = torch.tensor([-(v / s / 0.3)**2 for v in dists],
                            dtype=torch.float64)
    torch.testing.assert_close(
        par.positional_affinity(torch.float64), expected)
    # Nearest (axis, d = 1) neighbours get the largest positional weight.
    soft = expected.softmax(0)
    assert soft.argmax() in (1, 3, 4, 6)
    assert soft[1].item() == pytest.approx(0.0765, abs=1e-4)


def test_image_affinity_matches_formula():
    """Std over the N neighbour values of each channel (not incl. centre)."""
    g = torch.Generator().manual_seed(1)
    H, W = 4, 5
    img = torch.rand(1, 3, H, W, generator=g, dtype=torch.float64)
    par = PAR(dilations=(1, 2), w1=0.3)
    aff = par.image_affinity(img)
    assert aff.shape == (1, 1, 16, H, W)
    offs = neighbor_offsets((1, 2))
    for i, j in [(0, 0), (2, 3), (3, 4)]:
        per_ch = []
        for c in range(3):
            vals = [
                img[0, c,
                    min(max(i + dy, 0), H - 1),
                    min(max(j + dx, 0), W - 1)].item() for dy, dx in offs
            ]
            s = _unbiased_std(vals)
            centre = img[0, c, i, j].item()
            per_ch.append(
                [-(abs(v - centre) / (s + 1e-8) / 0.3)**2 for v in vals])
        expected = torch.tensor(per_ch, dtype=torch.float64).mean(0)
        torch.testing.assert_close(aff[0, 0, :, i, j], expected)


def test_affinity_sums_to_one_plus_w2():
    g = torch.Generator().manual_seed(2)
    img = torch.rand(2, 3, 6, 7, generator=g)
    aff = PAR(w2=0.01).affinity(img)
    assert aff.shape == (2, 1, 48, 6, 7)
    assert (aff > 0).all()
    torch.testing.assert_close(aff.sum(2), torch.full((2, 1, 6, 7), 1.01))


def test_par_constant_and_distribution_masks():
    """Affinities sum to 1 + w2, so PAR scales by (1 + w2) ** num_iter.

    A constant mask stays constant (times that factor), a distribution keeps
    its shape per pixel only up to that factor: PAR does not preserve sums
    unless w2 = 0.
    """
    g = torch.Generator().manual_seed(3)
    img = torch.rand(1, 3, 16, 20, generator=g)
    const = torch.full((1, 2, 16, 20), 0.3)
    out = PAR(num_iter=10, w2=0.01)(img, const)
    torch.testing.assert_close(out, const * 1.01**10)
    torch.testing.assert_close(PAR(w2=0.)(img, const), const)

    probs = torch.rand(1, 4, 16, 20, generator=g).softmax(1)
    out = PAR(num_iter=3, w2=0.01)(img, probs)
    torch.testing.assert_close(out.sum(1), torch.full((1, 16, 20), 1.01**3))
    out0 = PAR(num_iter=3, w2=0.)(img, probs)
    torch.testing.assert_close(out0.sum(1), torch.ones(1, 16, 20))


def test_par_resizes_masks_align_corners_true():
    g = torch.Generator().manual_seed(4)
    img = torch.rand(2, 3, 16, 20, generator=g)
    masks = torch.rand(2, 3, 8, 10, generator=g)
    out = PAR(num_iter=0)(img, masks)
    torch.testing.assert_close(
        out,
        F.interpolate(
            masks, size=(16, 20), mode='bilinear', align_corners=True))
    with pytest.raises(ValueError):
        PAR()(img, masks[:1])


def test_par_sharpens_a_blurred_mask_along_an_image_edge():
    H, W = 16, 20
    img = torch.full((1, 3, H, W), 0.1)
    img[..., 10:] = 0.9  # dark left, bright right: edge between cols 9, 10
    j = torch.arange(W, dtype=torch.float32)
    # The mask's ramp crosses 0.5 at col 6.5, three columns off the edge.
    ramp = torch.sigmoid((j - 6.5) / 2).expand(H, W)
    mask = torch.stack([1 - ramp, ramp])[None]
    gt = (j >= 10).long().expand(H, W)
    before = (mask.argmax(1)[0] == gt).float().mean().item()
    out = PAR()(img, mask)
    after = (out.argmax(1)[0] == gt).float().mean().item()
    assert before == pytest.approx(0.85)  # cols 7, 8, 9 wrong
    assert after == 1.0
    # Within each region the mask is (nearly) flattened.
    fg = out[0, 1] / out[0].sum(0)
    assert fg[:, :10].max() < 0.25 and fg[:, 10:].min() > 0.9


def test_par_with_grad():
    g = torch.Generator().manual_seed(5)
    img = torch.rand(1, 3, 8, 10, generator=g)
    masks = torch.rand(1, 2, 8, 10, generator=g).requires_grad_()
    par = PAR(num_iter=2)
    out = par(img, masks)
    out.sum().backward()
    assert masks.grad is not None and torch.isfinite(masks.grad).all()
    with torch.no_grad():
        torch.testing.assert_close(par(img, masks), out.detach())
    assert list(par.parameters()) == [] and list(par.buffers()) == []


# ------------------------------------------------- refine_cams_with_bkg --

H, W = 32, 40
NUM_CLASSES = 5


def _crafted():
    """Two objects (classes 2 and 5) with a mid-confidence ring each.

    Each region has its own colour, so PAR keeps the regions apart (with
    equal colours the dilated neighbours would mix the two objects). Region
    borders fall on even pixels, i.e. on pixel borders at PAR's resolution.

    Returns:
        tuple: image, CAMs, labels and the expected label map: CAM 0.9 >
        high (object) -> class; low < 0.5 <= high (ring) -> ignore; 0.05 <=
        low (background) -> 0.
    """
    img = torch.full((1, 3, H, W), 0.1)
    cams = torch.full((1, NUM_CLASSES, H, W), 0.05)
    expected = torch.zeros(H, W, dtype=torch.long)
    colours = {
        1: ((.5, .5, .1), (.9, .1, .1)),
        4: ((.1, .5, .5), (.1, .1, .9))
    }
    for ch, (r0, c0) in ((1, (4, 4)), (4, (4, 22))):
        ring, obj = (torch.tensor(c)[:, None, None] for c in colours[ch])
        img[0, :, r0:r0 + 16, c0:c0 + 14] = ring
        cams[0, ch, r0:r0 + 16, c0:c0 + 14] = 0.5
        expected[r0:r0 + 16, c0:c0 + 14] = IGNORE
        img[0, :, r0 + 4:r0 + 12, c0 + 4:c0 + 10] = obj
        cams[0, ch, r0 + 4:r0 + 12, c0 + 4:c0 + 10] = 0.9
        expected[r0 + 4:r0 + 12, c0 + 4:c0 + 10] = ch + 1
    # An absent class (channel 2, id 3) with a strong CAM everywhere.
    cams[0, 2] = 0.95
    cls_label = torch.zeros(1, NUM_CLASSES)
    cls_label[0, [1, 4]] = 1
    return img, cams, cls_label, expected


def test_refine_crafted_fg_bg_ignore():
    img, cams, cls_label, expected = _crafted()
    label = refine_cams_with_bkg(PAR(), img, cams, cls_label)
    assert label.shape == (1, H, W) and label.dtype == torch.int64
    assert torch.equal(label[0], expected)
    # Absent classes never appear, whatever their CAM.
    assert set(label.unique().tolist()) == {0, 2, 5, IGNORE}


def test_refine_img_box_and_low_resolution_cams():
    img, cams, cls_label, expected = _crafted()
    par = PAR()
    full = refine_cams_with_bkg(par, img, cams, cls_label)
    box = [[2, 30, 3, 36]]
    boxed = refine_cams_with_bkg(par, img, cams, cls_label, img_box=box)
    inside = torch.zeros(H, W, dtype=torch.bool)
    inside[2:30, 3:36] = True
    assert (boxed[0][~inside] == IGNORE).all()
    assert torch.equal(boxed[0][inside], expected[inside])
    # None entries leave an image unmasked.
    assert torch.equal(
        refine_cams_with_bkg(par, img, cams, cls_label, img_box=[None]), full)
    # CAMs at the PAR resolution give the same regions.
    small = F.interpolate(cams, size=(H // 2, W // 2), mode='bilinear')
    torch.testing.assert_close(
        refine_cams_with_bkg(par, img, small, cls_label), full)


def test_refine_per_image_high_threshold():
    """DuPL's dynamic threshold: one high constant per image."""
    img = torch.full((2, 3, H, W), 0.1)
    img[..., 8:24, 10:30] = 0.8
    cams = torch.full((2, NUM_CLASSES, H, W), 0.05)
    cams[:, 0, 8:24, 10:30] = 0.6  # between 0.55 and 0.7
    cls_label = torch.zeros(2, NUM_CLASSES)
    cls_label[:, 0] = 1
    par = PAR()
    thr = torch.tensor([0.7, 0.55])
    label = refine_cams_with_bkg(par, img, cams, cls_label, high_thr=thr)
    obj = (slice(10, 22), slice(12, 28))
    assert (label[0][obj] == IGNORE).all()  # 0.6 < 0.7: uncertain
    assert (label[1][obj] == 1).all()  # 0.6 > 0.55: foreground
    assert (label[:, :6] == 0).all()
    for i in range(2):
        single = refine_cams_with_bkg(
            par,
            img[i:i + 1],
            cams[i:i + 1],
            cls_label[i:i + 1],
            high_thr=thr[i].item())
        assert torch.equal(single[0], label[i])


def _reference(par, imgs, cams, cls_label, high, low, ignore=IGNORE):
    """Per-image loop, written from the notes (1.7) step by step."""
    B, _, Hh, Ww = imgs.shape
    size = (Hh // 2, Ww // 2)
    small_imgs = F.interpolate(imgs, size=size, mode='bilinear')
    small_cams = F.interpolate(cams, size=size, mode='bilinear')
    out = []
    for b in range(B):
        keys = torch.cat([
            torch.zeros(1, dtype=torch.long), cls_label[b].nonzero()[:, 0] + 1
        ])
        labels = []
        for thr in (high, low):
            stack = torch.cat(
                [torch.full((1, *size), thr),
                 small_cams[b, keys[1:] - 1]])[None].softmax(1)
            ref = F.interpolate(
                par(small_imgs[b:b + 1], stack),
                size=(Hh, Ww),
                mode='bilinear',
                align_corners=False)
            labels.append(keys[ref.argmax(1)[0]])
        lh, ll = labels
        label = lh.clone()
        label[lh == 0] = ignore
        label[(lh == 0) & (ll == 0)] = 0
        out.append(label)
    return torch.stack(out)


def test_refine_batched_equals_per_image_loop():
    """Padding the stacks to the batch maximum changes nothing; an image
    with no class is all background."""
    g = torch.Generator().manual_seed(6)
    imgs = torch.rand(3, 3, 16, 20, generator=g)
    cams = torch.rand(3, NUM_CLASSES, 16, 20, generator=g)
    cls_label = torch.tensor(
        [[1, 0, 0, 1, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]],
        dtype=torch.float32)
    par = PAR(num_iter=3)
    label = refine_cams_with_bkg(par, imgs, cams, cls_label, 0.6, 0.3)
    torch.testing.assert_close(
        label,
        _reference(par, imgs, cams, cls_label, 0.6, 0.3),
        rtol=0,
        atol=0)
    assert (label[2] == 0).all()
    assert set(label[0].unique().tolist()) <= {0, 1, 4, 5, IGNORE}
    assert set(label[1].unique().tolist()) <= {0, 2, IGNORE}
    with pytest.raises(ValueError):
        refine_cams_with_bkg(par, imgs, cams, cls_label[:2])
