# Copyright (c) OpenMMLab. All rights reserved.
"""Image-level label files: one format for every dataset.

Format (``cls_labels.json``)::

    {"2007_000032": [1, 15], "2007_000039": [19], ...}

a JSON object mapping each image name (file name without extension, as in
``ImageSets/Segmentation/*.txt``) to the sorted list of the foreground class
ids present in it. Ids index the dataset's metainfo ``classes`` (the lines of
``classes.txt``): 0 is background and is never listed. The ToCo/DuPL
``cls_labels_onehot.npy`` files (a pickled dict from image name to a
(C-1,) one-hot vector over the foreground classes) are accepted as well.

Inside the pipeline an image's labels are a multi-hot float vector over the
C-1 foreground classes (entry ``k`` is class id ``k + 1``), stored in
``SegDataSample.gt_cls_label``.

``IGNORE_INDEX``, :func:`default_palette`, :func:`labels_from_mask` and
:func:`save_cls_labels` live in :mod:`mmseg_wsss_light.voc_layout` (no
torch/mmseg) and are re-exported here.
"""
import json
import os.path as osp
from typing import Dict, Iterable, List, Optional

import numpy as np

from mmseg_wsss_light.voc_layout import (IGNORE_INDEX, default_palette,
                                         labels_from_mask, save_cls_labels)


def load_cls_labels(path: str) -> Dict[str, List[int]]:
    """Load an image-level labels file.

    Args:
        path (str): A ``.json`` file in the format above or a ToCo-style
            ``.npy`` dict of one-hot vectors.

    Returns:
        dict[str, list[int]]: Image name to sorted foreground class ids.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Image-level labels file not found: {path}')
    if path.endswith('.npy'):
        raw = np.load(path, allow_pickle=True)
        if raw.dtype == object and raw.shape == ():
            raw = raw.item()
        if not isinstance(raw, dict):
            raise ValueError(
                f'{path}: expected a pickled dict of image name -> one-hot '
                f'vector (ToCo cls_labels_onehot.npy), got {type(raw)}')
        return {
            str(name): [int(i) + 1 for i in np.flatnonzero(np.asarray(vec))]
            for name, vec in raw.items()
        }
    with open(path) as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path} is not valid JSON: {e}') from e
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected a JSON object mapping image name '
                         f'to a list of class ids, got {type(raw).__name__}')
    labels = {}
    for name, ids in raw.items():
        if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValueError(f'{path}: labels of image "{name}" must be a '
                             f'list of integer class ids, got {ids!r}')
        labels[str(name)] = sorted(set(ids))
    return labels


def to_multi_hot(ids: Iterable[int], num_classes: int) -> np.ndarray:
    """Foreground class ids to a (num_classes - 1,) float32 multi-hot."""
    vec = np.zeros(num_classes - 1, dtype=np.float32)
    for i in ids:
        vec[int(i) - 1] = 1.0
    return vec


def read_classes_file(path: str) -> List[str]:
    """Read ``classes.txt``: one class name a line, background first."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'classes file not found: {path}')
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) < 2:
        raise ValueError(f'{path} must list background and at least one '
                         f'object class, one per line; got {names}')
    if len(set(names)) != len(names):
        raise ValueError(f'{path} lists a class name twice: {names}')
    return names


def find_labels_file(data_root: str,
                     names: Optional[Iterable[str]] = None) -> Optional[str]:
    """First existing labels file among ``names`` under ``data_root``."""
    for name in names or ('cls_labels.json', 'cls_labels_onehot.npy'):
        path = osp.join(data_root, name)
        if osp.isfile(path):
            return path
    return None


__all__ = [
    'IGNORE_INDEX', 'load_cls_labels', 'save_cls_labels', 'labels_from_mask',
    'to_multi_hot', 'read_classes_file', 'default_palette', 'find_labels_file'
]
