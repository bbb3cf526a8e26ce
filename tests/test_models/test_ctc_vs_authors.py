# Copyright (c) OpenMMLab. All rights reserved.
"""ToCo's class token contrast (CTC) parts against the authors' code on the
same inputs.

Set ``WSSS_AUTHORS_TOCO`` to a checkout of rulixiang/ToCo
(official_code_notes section 0: commit e13514d) to run these; they are
skipped otherwise. ``utils/camutils.py`` and ``model/losses.py`` are loaded
by path at run time, never copied (the latter imports the compiled
``bilateralfilter`` extension, which a stub stands in for while loading: its
energy loss is not used here). What is compared: the ROI mask
(``cam_to_roi_mask2``), the local crops and their flags
(``crop_from_roi_neg``) from the same seed, and the loss
(``CTCLoss_neg``), whose overflow this port avoids.
"""
import pytest
import torch
from authors_code import cam_scene, load_file, skip_without

from mmseg_wsss.models.losses import ClassTokenContrastLoss
from mmseg_wsss.models.wsss.local_crops import cam_to_roi_mask, crop_from_roi

pytestmark = skip_without('WSSS_AUTHORS_TOCO', 'rulixiang/ToCo')


def authors(relpath: str):
    # model/losses.py imports the compiled energy loss, unused here.
    return load_file(
        'WSSS_AUTHORS_TOCO',
        relpath,
        stubs={
            'bilateralfilter': ['bilateralfilter', 'bilateralfilter_batch']
        })


def scene(size=96):
    """:func:`cam_scene` with its first image mostly background (so
    negative crops occur) and its last confident foreground everywhere (so
    the crops fall back to every position)."""
    cam, label, images, _ = cam_scene(size=size)
    cam[0] *= 0.75
    cam[-1] = 1.
    return cam, label, images


def test_roi_mask_matches_cam_to_roi_mask2():
    cam, label, _ = scene()
    theirs = authors('utils/camutils.py').cam_to_roi_mask2(
        cam, label, hig_thre=0.7, low_thre=0.25)
    mine = cam_to_roi_mask(cam, label, low_thr=0.25, high_thr=0.7)
    assert torch.equal(mine, theirs.long())
    assert set(mine.unique().tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    'size, crop', [(448, 96), (96, 24)], ids=['voc', 'toy'])
def test_crops_and_flags_match_crop_from_roi_neg(size, crop):
    cam, label, images = scene(size=size)
    roi = cam_to_roi_mask(cam, label, 0.25, 0.7)
    camutils = authors('utils/camutils.py')
    for seed in range(3):
        torch.manual_seed(seed)
        their_crops, flags = camutils.crop_from_roi_neg(
            images, roi.to(torch.int16), crop_num=8, crop_size=crop)
        torch.manual_seed(seed)
        crops, positive = crop_from_roi(images, roi, 8, crop)
        assert torch.equal(crops, torch.stack(their_crops, dim=1)), seed
        # Their flags hold the two global views first.
        assert flags[:, :2].eq(1).all()
        assert torch.equal(positive, flags[:, 2:].bool()), seed
    # Both kinds of crops occur, and the all-foreground image fell back to
    # every position (positive crops only).
    assert positive[:-1].any() and not positive[:-1].all()
    assert positive[-1].all()


@pytest.mark.parametrize('temperature', [0.5, 1.0])  # VOC, COCO
def test_loss_matches_ctc_loss_neg(temperature):
    B, V, K = 4, 10, 16
    gen = torch.Generator().manual_seed(0)
    # Projector outputs: cosines in [-1, 1] (DINO head, unit rows).
    student = torch.nn.functional.normalize(
        torch.randn(B, V, K, generator=gen), dim=-1)
    teacher = torch.nn.functional.normalize(
        torch.randn(B, 2, K, generator=gen), dim=-1)
    positive = torch.rand(B, V, generator=gen) < 0.5
    positive[:, :2] = True  # the global views
    positive[0, 2:] = True  # no negative crop
    positive[1, 2:] = False  # no positive local crop
    theirs = authors('model/losses.py').CTCLoss_neg(ncrops=V, temp=temperature)
    # Theirs takes crop-major (V * B, K) and (2 * B, K) outputs.
    expected = theirs(
        student.transpose(0, 1).reshape(V * B, K),
        teacher.transpose(0, 1).reshape(2 * B, K), positive.float())
    mine = ClassTokenContrastLoss(
        temperature=temperature, loss_weight=1.)(student, teacher, positive)
    torch.testing.assert_close(mine, expected, rtol=1e-5, atol=0)


def test_loss_stays_finite_where_theirs_overflows():
    # Unnormalised tokens (e.g. a projector without its L2 norm): exp of a
    # logit above ~88 overflows float32 in theirs, not in the log-sum-exp
    # form here.
    B, V, K = 2, 10, 16
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(B, V, K, generator=gen) * 10
    teacher = torch.randn(B, 2, K, generator=gen) * 10
    positive = torch.ones(B, V, dtype=torch.bool)
    positive[:, 5:] = False
    theirs = authors('model/losses.py').CTCLoss_neg(ncrops=V, temp=0.5)
    expected = theirs(
        student.transpose(0, 1).reshape(V * B, K),
        teacher.transpose(0, 1).reshape(2 * B, K), positive.float())
    mine = ClassTokenContrastLoss(
        temperature=0.5, loss_weight=1.)(student, teacher, positive)
    assert not torch.isfinite(expected)
    assert torch.isfinite(mine)
