# Copyright (c) OpenMMLab. All rights reserved.
"""VOC-layout helpers that need only numpy: the colour palette, image-level
labels from a label mask, and the atomic ``cls_labels.json`` writer.

The labels-file format is described in ``mmseg_wsss/datasets/cls_labels.py``
(which re-exports these names). This module does not import torch or mmseg,
so light tools (the toy generator) use it directly.
"""
import json
from typing import Dict, Iterable, List

import numpy as np

from .fileio import write_text_atomic

IGNORE_INDEX = 255


def default_palette(num_classes: int) -> List[List[int]]:
    """The PASCAL VOC colour map (bit-interleaved), for any class count."""
    palette = []
    for i in range(num_classes):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append([r, g, b])
    return palette


def labels_from_mask(mask: np.ndarray,
                     num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> List[int]:
    """Foreground class ids present in a label mask, as the papers derive
    their image-level labels (background 0 and ignore excluded).

    Args:
        mask (np.ndarray): (H, W) integer class map.
        num_classes (int): Number of classes including background.
        ignore_index (int): Value ignored. Defaults to 255.

    Returns:
        list[int]: Sorted foreground class ids.

    Raises:
        ValueError: If the mask holds an id outside ``[0, num_classes)``.
    """
    ids = np.unique(mask)
    ids = ids[ids != ignore_index]
    bad = ids[(ids < 0) | (ids >= num_classes)]
    if bad.size:
        raise ValueError(f'class ids {bad.tolist()} outside [0, '
                         f'{num_classes}) (ignore is {ignore_index})')
    return [int(i) for i in ids if i != 0]


def save_cls_labels(path: str, labels: Dict[str, Iterable[int]]) -> None:
    """Write a labels file atomically.

    The JSON goes to a new temporary file beside ``path``, is flushed to
    disk and renamed over ``path``: an interrupted write leaves no
    half-written file, and processes writing the same file at once (the
    ranks of a distributed run) each replace it whole. The file gets the
    usual permissions (0666 less the process umask, e.g. 0644), not the
    private 0600 of ``tempfile.mkstemp``.

    Args:
        path (str): The ``.json`` file to write.
        labels (dict[str, Iterable[int]]): Image name to foreground ids.

    Raises:
        OSError: The folder cannot be created or written.
    """
    data = {
        str(k): sorted({int(i) for i in v})
        for k, v in sorted(labels.items())
    }
    write_text_atomic(path, json.dumps(data, separators=(',', ':')))


__all__ = [
    'IGNORE_INDEX', 'default_palette', 'labels_from_mask', 'save_cls_labels'
]
