# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's dynamic threshold against the authors' code on the same inputs.

Set ``WSSS_AUTHORS_DUPL`` to a checkout of Wu0409/DuPL (official_code_notes
section 0: commit b21990f) to run these; they are skipped otherwise. Their
``utils/cam_helper.py`` is loaded by path, and ``cosine_descent`` is compiled
from ``utils/train_helper.py`` alone (that file imports their data sets);
nothing is copied. Compared as ``train_final_voc.py`` calls them: the
per-class threshold schedule (``cosine_descent`` from
``high_thres_start`` to the VOC table), each image's threshold (the maximum
over its classes), the PTC label (``cam_to_label_dynamic_cls``) and the
PAR-refined pseudo label (``refine_cams_with_dynamic_thres``, with ToCo's
PAR).
"""
import pytest
import torch
from authors_code import (THEIR_PAR, cam_scene, load_file, load_function,
                          skip_without)

from mmseg_wsss.models.wsss.cam_to_label import (cam_to_label,
                                                 refine_cams_with_bkg)
from mmseg_wsss.models.wsss.par import PAR
from mmseg_wsss.models.wsss.thresholds import (cosine_threshold,
                                               per_image_threshold)

pytestmark = skip_without('WSSS_AUTHORS_DUPL', 'Wu0409/DuPL')
# train_final_voc.py: 0.25 / 0.5 / 0.7, the CAM-only warm-up of 2,000 of
# 20,000 iterations, the per-class VOC targets.
LOW, BKG, HIGH, IGNORE = 0.25, 0.5, 0.7, 255
CAM_ITERS, MAX_ITERS = 2000, 20000
VOC_TARGETS = [
    0.70, 0.70, 0.70, 0.70, 0.55, 0.55, 0.55, 0.55, 0.70, 0.55, 0.55, 0.55,
    0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.70, 0.55
]


def authors(relpath: str):
    return load_file('WSSS_AUTHORS_DUPL', relpath)


def test_threshold_schedule_matches_cosine_descent():
    descent = load_function('WSSS_AUTHORS_DUPL', 'utils/train_helper.py',
                            'cosine_descent')
    start = torch.ones(20) * HIGH
    target = torch.tensor(VOC_TARGETS)
    for it in [0, 1999, 2000, 2001, 5000, 11000, 19998, 19999, 20000]:
        theirs = descent(start, target, it - CAM_ITERS, MAX_ITERS - CAM_ITERS)
        mine = cosine_threshold(
            it, HIGH, VOC_TARGETS, MAX_ITERS, warmup_iters=CAM_ITERS)
        torch.testing.assert_close(
            mine,
            torch.as_tensor(theirs, dtype=torch.float32),
            rtol=1e-6,
            atol=1e-7,
            msg=f'iteration {it}')


def their_image_thresholds(class_thr, label):
    """train_final_voc.py's loop: each image's maximum over its classes."""
    return torch.stack([
        torch.max(class_thr[torch.nonzero(label[i]).squeeze(-1)])
        for i in range(label.shape[0])
    ])


@pytest.mark.parametrize('iteration', [2000, 11000, 20000])
def test_dynamic_labels_match(iteration):
    cam, label, images, boxes = cam_scene()
    class_thr = cosine_threshold(
        iteration, HIGH, VOC_TARGETS, MAX_ITERS, warmup_iters=CAM_ITERS)
    theirs_thr = their_image_thresholds(class_thr, label)
    mine_thr = per_image_threshold(class_thr, label, HIGH)
    assert torch.equal(mine_thr, theirs_thr)
    helper = authors('utils/cam_helper.py')
    # PTC label (cam_to_label_dynamic_cls, ignore_mid, padding boxes).
    _, expected = helper.cam_to_label_dynamic_cls(
        cam,
        label,
        img_box=boxes,
        ignore_mid=True,
        bkg_thre=BKG,
        high_thre=theirs_thr,
        low_thre=LOW,
        ignore_index=IGNORE)
    mine = cam_to_label(
        cam, label, low_thr=LOW, high_thr=mine_thr, img_box=boxes)
    assert torch.equal(mine, expected)
    # PAR-refined label with the per-image high constant.
    B, _, H, W = images.shape
    valid_cam = cam * label[:, :, None, None]
    par = authors('model/PAR.py').PAR(**THEIR_PAR)
    with torch.no_grad():
        expected = helper.refine_cams_with_dynamic_thres(
            par,
            images,
            cams=valid_cam,
            cls_labels=label,
            high_thre_map=theirs_thr[:, None, None, None].expand(B, 1, H, W),
            low_thre=LOW,
            ignore_index=IGNORE,
            img_box=boxes)
    mine = refine_cams_with_bkg(
        PAR(), images, valid_cam, label, mine_thr, LOW, img_box=boxes)
    assert torch.equal(mine, expected.long())
    assert {0, IGNORE} <= set(mine.unique().tolist())
