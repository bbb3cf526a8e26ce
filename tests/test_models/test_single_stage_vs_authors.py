# Copyright (c) OpenMMLab. All rights reserved.
"""1Stage's parts against the authors' code on the same inputs.

Set ``WSSS_AUTHORS_1STAGE`` to a checkout of visinf/1-stage-wseg
(official_code_notes section 0: commit d905fca) to run these; they are
skipped otherwise. ``models/mods/pamr.py`` is loaded by path, and
``focal_loss``, ``pseudo_gtmask`` and ``balanced_mask_loss_ce`` are compiled
from ``models/stage_net.py`` alone (that file imports their backbones);
nothing is copied. Compared as ``SoftMaxAE.forward`` calls them, with
``core/config.py``'s values (PAMR 10 iterations at dilations 1-24, focal
p 3 and lambda 0.01): PAMR, the focal mask penalty, the pseudo label and
the class-balanced segmentation loss with its per-image gating.
"""
import torch
from authors_code import cam_scene, load_file, load_function, skip_without

from mmseg_wsss.models.losses import ClassBalancedCELoss
from mmseg_wsss.models.wsss.cam_to_label import masks_to_pseudo_label
from mmseg_wsss.models.wsss.ngwp import focal_mask_penalty
from mmseg_wsss.models.wsss.pamr import PAMR

ENV = 'WSSS_AUTHORS_1STAGE'
pytestmark = skip_without(ENV, 'visinf/1-stage-wseg')
IGNORE = 255


def stage_net(name: str):
    return load_function(ENV, 'models/stage_net.py', name)


def softmax_masks(size=32, seed=0):
    """Background-first softmax masks of 3 images (the code's constant
    background logit 1; each labelled class strong in a vertical band, the
    bands overlapping a little), their images and labels."""
    cam, label, images, _ = cam_scene(B=3, C=6, size=size, seed=seed)
    fg = 2 * cam - 2
    for b in range(label.shape[0]):
        for i, c in enumerate(label[b].nonzero()[:, 0].tolist()):
            fg[b, c, :, 8 * i:8 * i + 12] += 4
    logits = torch.cat([torch.ones_like(cam[:, :1]), fg], dim=1)
    return logits, torch.softmax(logits, dim=1), images, label


def test_pamr_matches():
    _, masks, images, _ = softmax_masks()
    theirs = load_file(ENV, 'models/mods/pamr.py').PAMR(
        num_iter=10, dilations=[1, 2, 4, 8, 12, 24])
    with torch.no_grad():
        expected = theirs(images, masks)
    refined = PAMR()(images, masks)
    torch.testing.assert_close(refined, expected, rtol=1e-5, atol=1e-5)
    assert (refined - masks).abs().max() > 1e-3  # it did refine


def test_focal_penalty_matches():
    _, masks, _, _ = softmax_masks()
    expected = stage_net('focal_loss')(masks.flatten(2).mean(-1), p=3, c=0.01)
    torch.testing.assert_close(
        focal_mask_penalty(masks, p=3, lam=0.01),
        expected,
        rtol=1e-6,
        atol=1e-7)


def their_label(pseudo_gt):
    """The class index ``balanced_mask_loss_ce`` trains each pixel on."""
    label = pseudo_gt.argmax(1)
    label[pseudo_gt.sum(1) < 1] = IGNORE
    return label


def test_pseudo_label_and_balanced_loss_match():
    logits, masks, images, label = softmax_masks()
    # _rescale_and_clean: the refined masks at the image size, absent
    # classes zeroed (background kept).
    refined = PAMR()(images, masks)
    refined[:, 1:] *= label[:, :, None, None]
    pseudo_gt = stage_net('pseudo_gtmask')(refined)
    mine = masks_to_pseudo_label(
        refined, fg_ratio=0.6, bg_ratio=0.7, min_thr=0.2)
    assert torch.equal(mine, their_label(pseudo_gt))
    assert {0, IGNORE} <= set(mine.unique().tolist())
    # The loss on the (lower-resolution) logits, per image gated on every
    # labelled class being in the pseudo label, then the batch mean
    # (train.py). Image 2 loses a class so the gate closes for it.
    label[2, (label[2] == 0).nonzero()[0]] = 1
    expected = stage_net('balanced_mask_loss_ce')(logits[..., ::2, ::2],
                                                  pseudo_gt, label).mean()
    loss = ClassBalancedCELoss(loss_weight=1.)(logits[..., ::2, ::2], mine,
                                               label)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-7)
    gate = stage_net('balanced_mask_loss_ce')(logits[..., ::2, ::2], pseudo_gt,
                                              label)
    assert gate[2] == 0 and (gate[:2] > 0).all()
