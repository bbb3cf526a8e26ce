# Copyright (c) OpenMMLab. All rights reserved.
"""Hand-computable checks of ToCo's class token contrast: the loss
(``CTCLoss_neg``) and the ROI-guided local crops with their flags."""
import math

import pytest
import torch

from mmseg_wsss.models.losses import ClassTokenContrastLoss
from mmseg_wsss.models.wsss import cam_to_roi_mask, crop_from_roi
from mmseg_wsss.registry import MODELS

EPS = 1e-4


def _loop_reference(student, teacher, positive, temperature, eps=EPS):
    """official_code_notes 1.6 written as loops with a direct ``exp``."""
    total = 0.
    for b in range(student.shape[0]):
        e = torch.exp(teacher[b] @ student[b].t() / temperature)  # (2, V)
        neg = e[:, ~positive[b]].sum(dim=1)
        loss = 0.
        for j in positive[b].nonzero().flatten().tolist():
            loss = loss - torch.log(e[:, j] / (e[:, j] + neg + eps))
        loss = loss - torch.log(1 / (1 + neg + eps))  # the for-else term
        total = total + loss.sum() / 2 / (positive[b].sum() + eps)
    return total / student.shape[0]


def test_ctc_loss_hand_computed():
    # Teacher globals t1 = (1, 0), t2 = (0, 1); students s1 = t1, s2 = t2
    # (positive) and s3 = (0, 0) (negative); temperature 1:
    # exp-logits  t1: (e, 1, 1)   t2: (1, e, 1)   -> n_g = exp(0) = 1.
    # l_1 = -log(e / (e + 1 + eps)) - log(1 / (1 + 1 + eps))
    #       + log(1 + 1 + eps)      (the for-else term)
    # l_2 = l_1 by symmetry; loss = (l_1 + l_2) / 2 / (2 + eps).
    teacher = torch.tensor([[[1., 0.], [0., 1.]]])
    student = torch.tensor([[[1., 0.], [0., 1.], [0., 0.]]])
    positive = torch.tensor([[True, True, False]])
    e = math.e
    l1 = (math.log(e + 1 + EPS) - 1) + 2 * math.log(2 + EPS)
    loss = ClassTokenContrastLoss(
        temperature=1.0, loss_weight=1.0)(student, teacher, positive)
    assert loss.item() == pytest.approx(l1 / (2 + EPS), abs=1e-6)
    # Default: VOC temperature 0.5 and weight 0.5 (= logits doubled, x0.5).
    default = ClassTokenContrastLoss()
    assert (default.temperature, default.loss_weight) == (0.5, 0.5)
    doubled = ClassTokenContrastLoss(
        temperature=1.0, loss_weight=1.0)(2 * student, teacher, positive)
    torch.testing.assert_close(
        default(student, teacher, positive), 0.5 * doubled)


def test_ctc_loss_matches_the_loop_form():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(3, 10, 6, generator=g) * 0.7
    teacher = torch.randn(3, 2, 6, generator=g) * 0.7
    positive = torch.rand(3, 10, generator=g) > 0.4
    positive[:, :2] = True  # the global views
    positive[2, 2:] = True  # an image without negatives
    for temperature in (0.5, 1.0):
        got = ClassTokenContrastLoss(
            temperature=temperature, loss_weight=1.0)(student, teacher,
                                                      positive)
        torch.testing.assert_close(
            got, _loop_reference(student, teacher, positive, temperature))
    # Flags as 0/1 floats work too; no flags: everything positive.
    loss_fn = ClassTokenContrastLoss(loss_weight=1.0)
    torch.testing.assert_close(
        loss_fn(student, teacher, positive.float()),
        loss_fn(student, teacher, positive))
    torch.testing.assert_close(
        loss_fn(student, teacher),
        _loop_reference(student, teacher, torch.ones_like(positive), 0.5))


def test_ctc_loss_gradients_and_large_logits():
    teacher = torch.randn(2, 2, 4, requires_grad=True)
    student = torch.randn(2, 5, 4, requires_grad=True)
    positive = torch.tensor([[1, 1, 0, 1, 0], [1, 1, 0, 0, 0]]).bool()
    ClassTokenContrastLoss()(student, teacher, positive).backward()
    assert teacher.grad is None  # the teacher is a target
    assert torch.isfinite(student.grad).all()
    # exp(1e4) overflows the code's direct form; log-sum-exp does not.
    big_s = (student.detach() * 1e3).requires_grad_()
    big_t = teacher.detach() * 10
    loss = ClassTokenContrastLoss()(big_s, big_t, positive)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(big_s.grad).all()


def test_ctc_loss_layout_and_errors():
    # ToCo's student output is crop-major (V * B, K): reshape(V, B, K) and
    # swap to batch-major (B, V, K).
    B, V, K = 2, 10, 3
    crop_major = torch.arange(V * B * K, dtype=torch.float32).reshape(V * B, K)
    batch_major = crop_major.reshape(V, B, K).transpose(0, 1)
    assert torch.equal(batch_major[1, 3], crop_major[3 * B + 1])
    loss_fn = MODELS.build(dict(type='ClassTokenContrastLoss'))
    assert loss_fn.loss_name == 'loss_ctc'
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(2, 10, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match='positive'):
        loss_fn(
            torch.zeros(2, 10, 3), torch.zeros(2, 2, 3),
            torch.ones(2, 9, dtype=torch.bool))


# ------------------------------------------------------------ local crops


def test_cam_to_roi_mask_levels():
    cam = torch.tensor([[0.25, 0.26], [0.69, 0.7]])[None, None]
    roi = cam_to_roi_mask(cam)
    assert roi.tolist() == [[[0, 1], [1, 2]]]
    # An absent class does not count.
    two = torch.cat([cam, torch.full_like(cam, 0.9)], dim=1)
    assert cam_to_roi_mask(two).tolist() == [[[2, 2], [2, 2]]]
    assert cam_to_roi_mask(two, torch.tensor([[1, 0]])).tolist() == \
        roi.tolist()


def test_crop_from_roi_centres_and_flags():
    H = W = 12
    images = torch.arange(
        2 * 3 * H * W, dtype=torch.float32).reshape(2, 3, H, W)
    roi = torch.full((2, H, W), 2)  # confident foreground ...
    centres = [(2, 2), (5, 7), (9, 4)]
    for y, x in centres:
        roi[0, y, x] = 0  # ... except three background centres
    crops, positive = crop_from_roi(
        images,
        roi,
        num_crops=3,
        crop_size=4,
        generator=torch.Generator().manual_seed(0))
    assert crops.shape == (2, 3, 3, 4, 4) and positive.shape == (2, 3)
    found = set()
    for i in range(3):
        # Top-left corner = centre - crop_size // 2.
        y0, x0 = divmod(int(crops[0, i, 0, 0, 0].item()) % (H * W), W)
        assert torch.equal(crops[0, i], images[0, :, y0:y0 + 4, x0:x0 + 4])
        found.add((y0 + 2, x0 + 2))
    assert found == set(centres)
    # Mostly foreground (ROI 2): positive.
    assert positive[0].all()
    # Image 1 has no candidate (all foreground): any position is drawn.
    assert positive[1].all()


def test_crop_from_roi_negative_threshold():
    # 5x5 image, 5x5 crop: a single corner, the crop is the whole image.
    images = torch.randn(1, 3, 5, 5)
    roi = torch.zeros(1, 5, 5, dtype=torch.long)
    roi.view(-1)[:5] = 1  # ROI mass 5 / 25 = 0.2: negative (<= 0.2)
    crops, positive = crop_from_roi(images, roi, num_crops=1, crop_size=5)
    assert torch.equal(crops[0, 0], images[0]) and not positive[0, 0]
    roi.view(-1)[5] = 1  # 6 / 25 > 0.2: positive
    _, positive = crop_from_roi(images, roi, num_crops=1, crop_size=5)
    assert positive[0, 0]
    # Fewer positions than crops: the draw repeats.
    crops, positive = crop_from_roi(images, roi, num_crops=3, crop_size=5)
    assert crops.shape == (1, 3, 3, 5, 5) and positive.all()
    with pytest.raises(ValueError, match='fit'):
        crop_from_roi(images, roi, crop_size=6)


def test_crop_from_roi_is_deterministic_under_a_generator():
    images = torch.randn(2, 3, 32, 32)
    roi = torch.randint(0, 3, (2, 32, 32))

    def draw(seed):
        return crop_from_roi(
            images,
            roi,
            num_crops=4,
            crop_size=8,
            generator=torch.Generator().manual_seed(seed))

    a, b, c = draw(3), draw(3), draw(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
