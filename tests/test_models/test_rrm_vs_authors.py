# Copyright (c) OpenMMLab. All rights reserved.
"""RRM's reliable label against the authors' code on the same inputs.

Set ``WSSS_AUTHORS_RRM`` to a checkout of zbf1991/RRM (official_code_notes
section 0: commit 6d4191c) to run this; it is skipped otherwise. Their
``tool/myTool.py`` (with its ``tool/imutils.py``: pydensecrf and OpenCV) is
loaded from the checkout, never copied. ``compute_seg_label`` is compared
as ``train_from_cls_weight.py`` calls it (the crop as uint8 HWC, the image
labels, the per-class max-normalised CAMs) with :func:`rrm_reliable_label`
and the project's dense CRF with RRM's training parameters (Gaussian 3/3,
bilateral 80/13/10, 10 iterations).
"""
import numpy as np
import pytest
import torch
from authors_code import cam_scene, load_file, skip_without

from mmseg_wsss.models.postprocess.dense_crf import DenseCRF
from mmseg_wsss.models.wsss.reliable_label import rrm_reliable_label

ENV = 'WSSS_AUTHORS_RRM'
pytestmark = skip_without(ENV, 'zbf1991/RRM')


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_reliable_label_matches_compute_seg_label(seed):
    pytest.importorskip('pydensecrf.densecrf')
    my_tool = load_file(ENV, 'tool/myTool.py', package_root=True)
    cam, label, images, _ = cam_scene(B=3, C=20, size=48, seed=seed)
    cam[..., :12] *= 0.01  # a background region on the left
    crf = DenseCRF(preset='1stage')
    for b in range(3):
        image = (images[b].permute(1, 2, 0) * 255).to(torch.uint8).numpy()
        present = label[b].numpy()
        # Their per-class max normalisation of the up-sampled CAMs.
        norm_cam = cam[b].numpy() * present[:, None, None]
        norm_cam = norm_cam / (norm_cam.max((1, 2), keepdims=True) + 1e-5)
        expected = my_tool.compute_seg_label(image, present, norm_cam.copy())
        mine = rrm_reliable_label(image, norm_cam, present, crf)
        assert np.array_equal(mine, expected), (seed, b)
        assert {0, 255} <= set(np.unique(mine).tolist())
        assert len(np.unique(mine)) > 2  # and a class
