# Copyright (c) OpenMMLab. All rights reserved.
"""Statistics of label maps against masks (numpy, no model).

Shared by the tools that score label maps written to disk:
``tools/analysis_tools/report.py`` (test predictions) and
``tools/make_pseudo_labels.py`` (second-stage pseudo labels).
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

IGNORE_INDEX = 255
# Upper edges (px) of the distance bins of false positives; one more bin
# for farther pixels and one for classes absent from the image.
FP_DISTANCE_BINS = (1, 2, 4)


def confusion_matrix(pred: np.ndarray,
                     gt: np.ndarray,
                     num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(C, C + 1) int64 pixel counts over the annotated pixels.

    Rows: ground truth; columns: predicted class, the last column the
    pixels the label map marks ``ignore_index`` (a pseudo label's
    unlabelled pixels: misses of their class, as in mmseg's ``IoUMetric``).
    Pixels the mask marks ``ignore_index`` are left out.

    Args:
        pred (ndarray): (H, W) predicted class ids.
        gt (ndarray): (H, W) ground-truth class ids.
        num_classes (int): C, background included.
        ignore_index (int): Defaults to 255.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'label map {pred.shape} and mask {gt.shape} '
                         'differ in size')
    pred, gt = pred.astype(np.int64).ravel(), gt.astype(np.int64).ravel()
    keep = gt != ignore_index
    pred, gt = pred[keep], gt[keep]
    bad = np.concatenate([
        gt[(gt < 0) | (gt >= num_classes)],
        pred[(pred < 0) | ((pred >= num_classes) & (pred != ignore_index))]
    ])
    if bad.size:
        values = np.unique(bad)
        raise ValueError(f'class ids {values.tolist()[:10]} outside 0..'
                         f'{num_classes - 1} (ignore {ignore_index})')
    pred = np.where(pred == ignore_index, num_classes, pred)
    return np.bincount(
        gt * (num_classes + 1) + pred,
        minlength=num_classes * (num_classes + 1)).reshape(
            num_classes, num_classes + 1)


def class_figures(hist: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-class percentages of a confusion matrix (NaN where undefined).

    Args:
        hist (ndarray): (C, C + 1) counts of :func:`confusion_matrix` (or
            (C, C) without an ignore column).

    Returns:
        dict: (C,) arrays ``IoU``, ``precision`` TP / (TP + FP), ``recall``
        TP / (TP + FN) (ignored pixels are misses) and ``over_activation``
        FP / (TP + FP) (DuPL's OA rate, 100 - precision).
    """
    hist = hist.astype(np.float64)
    num_classes = hist.shape[0]
    tp = np.diag(hist[:, :num_classes])
    predicted, actual = hist[:, :num_classes].sum(0), hist.sum(1)
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = tp / (predicted + actual - tp)
        precision = tp / predicted
        recall = tp / actual
    return dict(
        IoU=100 * iou,
        precision=100 * precision,
        recall=100 * recall,
        over_activation=100 * (1 - precision))


def false_positives_by_distance(
        pred: np.ndarray,
        gt: np.ndarray,
        num_classes: int,
        bins: Sequence[int] = FP_DISTANCE_BINS,
        ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Where each class's false positives lie, by distance to the class.

    A false positive of class c (predicted c, annotated otherwise) is
    binned by its Euclidean distance to the nearest pixel annotated c:
    ``(0, bins[0]]``, ..., ``> bins[-1]``, or, when the image has no pixel
    of c, ``absent``. Near ones are a boundary band (masks too wide), far
    ones a flood or another object, absent ones a classification error.

    Returns:
        ndarray: (C, len(bins) + 2) int64 counts; row 0 (background) is zero.
    """
    from scipy.ndimage import distance_transform_edt
    counts = np.zeros((num_classes, len(bins) + 2), np.int64)
    valid = gt != ignore_index
    edges = np.array([0, *bins], np.float64)
    for c in range(1, num_classes):
        fp = (pred == c) & valid & (gt != c)
        if not fp.any():
            continue
        true = gt == c
        if not true.any():
            counts[c, -1] += int(fp.sum())
            continue
        dist = distance_transform_edt(~true)[fp]
        counts[c, :len(bins) + 1] += np.bincount(
            np.searchsorted(edges[1:], dist, side='left'),
            minlength=len(bins) + 1)[:len(bins) + 1]
    return counts


def read_label_map(path: str) -> np.ndarray:
    """(H, W) class ids of a single-channel or palette PNG."""
    from PIL import Image
    with Image.open(path) as img:
        if img.mode not in ('L', 'P', 'I', 'I;16'):
            raise ValueError(f'{path}: a {img.mode} image is not a label map '
                             '(class ids in one channel or a palette)')
        return np.array(img)


def scan_label_folders(
    pred_dir: str,
    gt_dir: str,
    num_classes: int,
    names: Optional[Sequence[str]] = None,
    suffix: str = '.png',
    fp_bins: Optional[Sequence[int]] = FP_DISTANCE_BINS,
    ignore_index: int = IGNORE_INDEX
) -> Tuple[np.ndarray, Optional[np.ndarray], int]:
    """Confusion matrix (and false positives by distance) of two folders.

    Args:
        pred_dir (str): Label maps ``<name><suffix>``.
        gt_dir (str): Masks of the same names.
        num_classes (int): C.
        names (Sequence[str], optional): Stems to score (default every
            label map in ``pred_dir``); a missing mask is an error.
        fp_bins (Sequence[int], optional): Distance bins of
            :func:`false_positives_by_distance`; None skips them.

    Returns:
        tuple: (C, C + 1) confusion matrix, (C, len(fp_bins) + 2)
        false-positive counts or None, number of images.
    """
    if names is None:
        names = sorted(f[:-len(suffix)] for f in os.listdir(pred_dir)
                       if f.endswith(suffix) and not f.startswith('.'))
    hist = np.zeros((num_classes, num_classes + 1), np.int64)
    fp = None if fp_bins is None else np.zeros(
        (num_classes, len(fp_bins) + 2), np.int64)
    for name in names:
        gt_path = osp.join(gt_dir, name + suffix)
        if not osp.isfile(gt_path):
            raise FileNotFoundError(f'no mask {gt_path} for the label map '
                                    f'{osp.join(pred_dir, name + suffix)}')
        pred = read_label_map(osp.join(pred_dir, name + suffix))
        gt = read_label_map(gt_path)
        try:
            hist += confusion_matrix(pred, gt, num_classes, ignore_index)
        except ValueError as e:
            raise ValueError(f'{osp.join(pred_dir, name + suffix)}: {e}')
        if fp is not None:
            fp += false_positives_by_distance(pred, gt, num_classes, fp_bins,
                                              ignore_index)
    return hist, fp, len(names)
