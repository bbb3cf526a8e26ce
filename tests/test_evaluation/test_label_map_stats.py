# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg_wsss.evaluation.label_map_stats and tools/analysis_tools/report.py."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

from mmseg_wsss.evaluation.label_map_stats import (class_figures,
                                                   confusion_matrix,
                                                   false_positives_by_distance,
                                                   scan_label_folders)

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def test_confusion_and_class_figures_by_hand():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 0]])
    pred = np.array([[0, 1, 1, 255], [0, 2, 0, 0]])
    hist = confusion_matrix(pred, gt, 3)
    # Left out: (1, 2), not annotated. (0, 3), a class-1 pixel labelled
    # ignore, is in the last column: a miss of class 1.
    assert hist.tolist() == [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 1, 0]]
    f = class_figures(hist)
    # bg: TP 2, predicted 3, actual 3 -> IoU 2 / 4; class 1: TP 1,
    # predicted 2, actual 2 -> IoU 1 / 3; class 2: TP 1, predicted 1,
    # actual 2 -> IoU 1 / 2.
    np.testing.assert_allclose(f['IoU'], [50, 100 / 3, 50])
    np.testing.assert_allclose(f['precision'], [200 / 3, 50, 100])
    np.testing.assert_allclose(f['recall'], [200 / 3, 50, 50])
    np.testing.assert_allclose(f['over_activation'], [100 / 3, 50, 0])
    # Without an ignore column (C, C): the same but class 1's miss.
    f = class_figures(hist[:, :3])
    np.testing.assert_allclose(f['recall'], [200 / 3, 100, 50])


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError, match='differ in size'):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match=r'class ids \[7\]'):
        confusion_matrix(np.full((2, 2), 7), np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match=r'class ids \[3\]'):
        confusion_matrix(np.zeros((2, 2)), np.full((2, 2), 3), 3)


def test_never_predicted_class_has_nan_precision():
    f = class_figures(np.array([[3, 0], [2, 0]]))
    assert np.isnan(f['precision'][1]) and f['recall'][1] == 0


def test_false_positives_by_distance_by_hand():
    # Class 1 is the single pixel (0, 0) of a 1 x 8 row.
    gt = np.zeros((1, 8), np.int64)
    gt[0, 0] = 1
    pred = np.ones((1, 8), np.int64)  # every pixel predicted as class 1
    pred[0, 7] = 2  # class 2 is absent from the image
    counts = false_positives_by_distance(pred, gt, 3)
    # False positives of class 1 at distances 1..6: bins (0, 1] -> 1,
    # (1, 2] -> 1, (2, 4] -> 2 (3 and 4), > 4 -> 2 (5 and 6).
    assert counts[1].tolist() == [1, 1, 2, 2, 0]
    assert counts[2].tolist() == [0, 0, 0, 0, 1]
    assert counts[0].sum() == 0


def write_png(path, array):
    Image.fromarray(array.astype(np.uint8), mode='L').save(path)


def test_report_cli_agrees_with_the_counts(tmp_path):
    rng = np.random.default_rng(0)
    pred_dir, gt_dir = tmp_path / 'pred', tmp_path / 'gt'
    pred_dir.mkdir()
    gt_dir.mkdir()
    total = np.zeros((3, 4), np.int64)
    for i in range(3):
        gt = rng.integers(0, 3, (12, 10))
        gt[0, 0] = 255
        pred = np.where(rng.random((12, 10)) < 0.7, gt, rng.integers(0, 3))
        pred[0, 1] = 255  # an unlabelled pixel
        write_png(pred_dir / f'img{i}.png', pred)
        write_png(gt_dir / f'img{i}.png', gt)
        total += confusion_matrix(pred, gt, 3)
    hist, fp, n = scan_label_folders(str(pred_dir), str(gt_dir), 3)
    assert n == 3 and (hist == total).all() and fp.shape == (3, 5)

    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
    try:
        import report
    finally:
        sys.path.pop(0)
    out = tmp_path / 'report'
    assert report.main([
        str(pred_dir), '--gt-dir',
        str(gt_dir), '--classes', 'background', 'a', 'b', '--out-dir',
        str(out)
    ]) == 0
    with open(out / 'report.json') as f:
        data = json.load(f)
    iou = class_figures(total)['IoU']
    assert data['mIoU'] == pytest.approx(iou.mean())
    assert data['per_class']['a']['IoU'] == pytest.approx(iou[1])
    assert data['confusion'] == total.tolist()
    assert sum(data['fp_by_distance'].values()) == pytest.approx(100)
    assert (out / 'confusion.png').stat().st_size > 0
    assert '| a |' in (out / 'report.md').read_text()


def test_scan_names_a_missing_mask(tmp_path):
    (tmp_path / 'pred').mkdir()
    (tmp_path / 'gt').mkdir()
    write_png(tmp_path / 'pred' / 'x.png', np.zeros((2, 2)))
    with pytest.raises(FileNotFoundError, match='x.png'):
        scan_label_folders(str(tmp_path / 'pred'), str(tmp_path / 'gt'), 2)
