# Copyright (c) OpenMMLab. All rights reserved.
"""The ToCo substrate shared by ToCo, DuPL and FSR against the authors'
code on the same inputs.

Set ``WSSS_AUTHORS_TOCO`` to a checkout of rulixiang/ToCo
(official_code_notes section 0: commit e13514d) to run these; they are
skipped otherwise. ``utils/camutils.py``, ``model/losses.py`` and
``model/PAR.py`` are loaded by path at run time, never copied (see
test_ctc_vs_authors.py for the loader). Compared with the call sites of
``scripts/dist_train_voc_seg_neg.py`` (thresholds 0.25 / 0.5 / 0.7): the
CAM labels of evaluation and training, PAR, the PAR-refined pseudo label
with two background constants, the patch token contrast (PTC) loss with its
affinity target, and the background/foreground-balanced segmentation loss.
"""
import torch
from authors_code import THEIR_PAR, cam_scene, skip_without
from test_ctc_vs_authors import authors

from mmseg_wsss.models.losses import BgFgSegLoss, PTCLoss
from mmseg_wsss.models.wsss.cam_to_label import (cam_to_label,
                                                 refine_cams_with_bkg)
from mmseg_wsss.models.wsss.par import PAR

pytestmark = skip_without('WSSS_AUTHORS_TOCO', 'rulixiang/ToCo')
LOW, BKG, HIGH, IGNORE = 0.25, 0.5, 0.7, 255


def test_cam_labels_match_cam_to_label():
    cam, label, _, boxes = cam_scene()
    camutils = authors('utils/camutils.py')
    # Evaluation: background at or below bkg_thre.
    theirs = camutils.cam_to_label(cam, label, bkg_thre=BKG)
    assert torch.equal(cam_to_label(cam, label, bkg_thr=BKG), theirs)
    # Training (ignore_mid, the padding box): fg above high, bg at or
    # below low, ignore between and outside the box.
    _, theirs = camutils.cam_to_label(
        cam,
        label,
        img_box=boxes,
        ignore_mid=True,
        bkg_thre=BKG,
        high_thre=HIGH,
        low_thre=LOW,
        ignore_index=IGNORE)
    mine = cam_to_label(cam, label, low_thr=LOW, high_thr=HIGH, img_box=boxes)
    assert torch.equal(mine, theirs)
    assert set(mine.unique().tolist()) >= {0, IGNORE}
    assert (mine[(mine != 0) & (mine != IGNORE)]).numel() > 0


def test_par_matches():
    cam, label, images, _ = cam_scene()
    theirs = authors('model/PAR.py').PAR(**THEIR_PAR)
    probs = torch.softmax(cam * 5, dim=1)
    with torch.no_grad():
        expected = theirs(images, probs)
        refined = PAR()(images, probs)
    torch.testing.assert_close(refined, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(refined, probs * 1.01**10, atol=1e-3)


def test_refined_pseudo_label_matches_refine_cams_with_bkg_v2():
    cam, label, images, boxes = cam_scene()
    valid_cam = cam * label[:, :, None, None]
    par_theirs = authors('model/PAR.py').PAR(**THEIR_PAR)
    with torch.no_grad():
        expected = authors('utils/camutils.py').refine_cams_with_bkg_v2(
            par_theirs,
            images,
            cams=valid_cam,
            cls_labels=label,
            high_thre=HIGH,
            low_thre=LOW,
            ignore_index=IGNORE,
            img_box=boxes)
    mine = refine_cams_with_bkg(
        PAR(), images, valid_cam, label, HIGH, LOW, img_box=boxes)
    assert torch.equal(mine, expected.long())
    assert set(mine.unique().tolist()) >= {0, IGNORE}


def test_ptc_loss_matches_get_masked_ptc_loss():
    B, D, h, w = 3, 24, 6, 6
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(B, D, h, w, generator=gen)
    label = torch.randint(0, 4, (B, h, w), generator=gen)
    label[label == 3] = IGNORE
    losses = authors('model/losses.py')
    camutils = authors('utils/camutils.py')
    expected = losses.get_masked_ptc_loss(
        tokens, camutils.label_to_aff_mask(label, ignore_index=IGNORE))
    mine = PTCLoss(loss_weight=1.)(tokens, label)
    torch.testing.assert_close(mine, expected, rtol=1e-6, atol=1e-7)


def test_seg_loss_matches_get_seg_loss():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 21, 16, 16, generator=gen)
    label = torch.randint(0, 21, (2, 16, 16), generator=gen)
    label[:, :4] = IGNORE
    label[:, 4:8] = 0
    expected = authors('model/losses.py').get_seg_loss(
        logits, label, ignore_index=IGNORE)
    mine = BgFgSegLoss(loss_weight=1.)(logits, label)
    torch.testing.assert_close(mine, expected, rtol=1e-6, atol=1e-7)
