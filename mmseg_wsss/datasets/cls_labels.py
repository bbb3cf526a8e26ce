# Copyright (c) OpenMMLab. All rights reserved.
"""Image-level label files: one format for every dataset.

Format (``cls_labels.json``)::

    {"2007_000032": [1, 15], "2007_000039": [19], ...}

a JSON object mapping each image name (file name without extension, as in
``ImageSets/Segmentation/*.txt``) to the sorted list of the foreground class
ids present in it. Ids index the dataset's metainfo ``classes`` (the lines of
``classes.txt``): 0 is background and is never listed. The ToCo/DuPL
``cls_labels_onehot.npy`` files (a pickled dict from image name to a
(C-1,) one-hot vector over the foreground classes) are accepted as well;
they are unpickled with an allow-list (numpy arrays in a dict of str), so a
crafted ``.npy`` cannot run code.

Inside the pipeline an image's labels are a multi-hot float vector over the
C-1 foreground classes (entry ``k`` is class id ``k + 1``), stored in
``SegDataSample.gt_cls_label``.

``IGNORE_INDEX``, :func:`default_palette`, :func:`labels_from_mask` and
:func:`save_cls_labels` live in :mod:`mmseg_wsss_light.voc_layout` (no
torch/mmseg) and are re-exported here.
"""
import json
import os.path as osp
import pickle
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np
from numpy.lib import format as npy_format

from mmseg_wsss_light.voc_layout import (IGNORE_INDEX, default_palette,
                                         labels_from_mask, save_cls_labels)


def _numpy_pickle_allow_list() -> Dict[tuple, Callable]:
    """The globals a pickled dict of str -> numpy arrays refers to.

    numpy 1.x writes ``numpy.core.*`` names, numpy 2.x ``numpy._core.*``;
    both map onto the installed numpy's objects. Builtins (dict, str, list,
    bytes) are rebuilt by pickle opcodes and never reach ``find_class``.
    """
    multiarray = getattr(np, '_core', None) or np.core
    core_objects = {
        'multiarray._reconstruct': multiarray.multiarray._reconstruct,
        'multiarray.scalar': multiarray.multiarray.scalar,
        # Protocol-5 pickles of arrays; a pure array constructor.
        'numeric._frombuffer': getattr(multiarray.numeric, '_frombuffer',
                                       None),
    }
    allowed = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype}
    for core in ('numpy.core', 'numpy._core'):
        for name, obj in core_objects.items():
            module, attr = name.split('.')
            if obj is not None:
                allowed[(f'{core}.{module}', attr)] = obj
    dtypes_mod = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes_mod is not None:
        for name in dir(dtypes_mod):
            if name.endswith('DType'):
                allowed[('numpy.dtypes', name)] = getattr(dtypes_mod, name)
    # Python 2-compatible pickles (protocol < 3) encode bytes through
    # ``_codecs.encode``, a pure function.
    import _codecs
    allowed[('_codecs', 'encode')] = _codecs.encode
    import collections
    allowed[('collections', 'OrderedDict')] = collections.OrderedDict
    return allowed


class RefusedPickleError(pickle.UnpicklingError):
    """A pickled ``.npy`` names a global outside the allow-list."""


class _NumpyDictUnpickler(pickle.Unpickler):
    """Unpickle numpy arrays in plain containers, and nothing else.

    ``np.load(allow_pickle=True)`` lets a crafted file call any global (e.g.
    ``os.system``) while it loads. Here every global the pickle names is
    checked against :func:`_numpy_pickle_allow_list` before it is resolved,
    so nothing outside numpy's array constructors can be called.

    Args:
        file: The open file, positioned at the pickle.
        path (str): The file's path, for the error message.
    """

    def __init__(self, file, path: str) -> None:
        super().__init__(file)
        self.path = path
        self.allowed = _numpy_pickle_allow_list()

    def find_class(self, module: str, name: str) -> Any:
        obj = self.allowed.get((module, name))
        if obj is None:
            raise RefusedPickleError(
                f'{self.path}: refused to unpickle the global '
                f'"{module}.{name}": an image-level labels .npy may only '
                'hold a dict of image name -> numpy vector (ToCo '
                'cls_labels_onehot.npy), and unpickling anything else can '
                'run arbitrary code. If the file should be such a dict, '
                'rebuild it, or use a cls_labels.json (see '
                'docs/datasets.md).')
        return obj


def _load_npy(path: str) -> Any:
    """Load a ``.npy`` file without running code from it.

    Arrays of plain dtypes load with ``allow_pickle=False``; object arrays
    (ToCo's 0-d array wrapping a dict) are unpickled with
    :class:`_NumpyDictUnpickler`.
    """
    with open(path, 'rb') as f:
        try:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                _, _, dtype = npy_format.read_array_header_1_0(f)
            elif version == (2, 0):
                _, _, dtype = npy_format.read_array_header_2_0(f)
            else:
                raise ValueError(f'unsupported .npy format version {version}')
        except ValueError as e:
            raise ValueError(f'{path} is not a readable .npy file: {e}') from e
        if not dtype.hasobject:
            return np.load(path, allow_pickle=False)
        try:
            return _NumpyDictUnpickler(f, path).load()
        except RefusedPickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
                AttributeError) as e:
            raise ValueError(
                f'{path}: damaged pickled .npy ({type(e).__name__}: {e}); '
                'expected a dict of image name -> one-hot vector (ToCo '
                'cls_labels_onehot.npy)') from e


def load_cls_labels(path: str) -> Dict[str, List[int]]:
    """Load an image-level labels file.

    Args:
        path (str): A ``.json`` file in the format above or a ToCo-style
            ``.npy`` dict of one-hot vectors.

    Returns:
        dict[str, list[int]]: Image name to sorted foreground class ids.

    Raises:
        pickle.UnpicklingError: A ``.npy`` pickle names anything but numpy
            arrays (it is refused before any of it runs).
        ValueError: The file's structure is not one of the formats above.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Image-level labels file not found: {path}')
    if path.endswith('.npy'):
        raw = _load_npy(path)
        if (isinstance(raw, np.ndarray) and raw.dtype == object
                and raw.shape == ()):
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
    'IGNORE_INDEX', 'RefusedPickleError', 'load_cls_labels', 'save_cls_labels',
    'labels_from_mask', 'to_multi_hot', 'read_classes_file', 'default_palette',
    'find_labels_file'
]
