# Copyright (c) OpenMMLab. All rights reserved.
"""Train any segmentation dataset on exported pseudo labels."""
import copy
import logging
import os.path as osp
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from PIL import Image

from mmseg_wsss.registry import DATASETS
from .image_check import MAX_LISTED, decode_error

#: How to make the labels, for the error messages.
HOW_TO_MAKE = (
    'Make them with `python tools/make_pseudo_labels.py CONFIG CHECKPOINT '
    '--out {dir}` (the single-stage model and its checkpoint; add `--split '
    'SPLIT` for the split this dataset trains on), or run the whole second '
    'stage with `tools/second_stage.sh CONFIG CHECKPOINT SECOND_CONFIG '
    'WORK_DIR`; or point `train_dataloader.dataset.pseudo_label_dir` at '
    'the right folder.')
# PIL modes of a class-index map: palette or 8-bit grey (16-bit grey for
# more than 256 classes).
LABEL_MODES = ('P', 'L', 'I;16', 'I')
# EXIF orientations that swap width and height: OpenCV (mmcv's
# LoadImageFromFile) applies them when decoding, so the pipeline's image
# is transposed relative to the stored size.
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


@DATASETS.register_module()
class PseudoLabelDataset:
    """A dataset whose masks are pseudo labels from a folder.

    Wraps any mmseg / mmseg_wsss dataset (mmengine's ``ConcatDataset``,
    ``RepeatDataset`` and ``ClassBalancedDataset`` included) and replaces
    each sample's ``seg_map_path`` with ``pseudo_label_dir/<image
    stem><seg_map_suffix>``, so a fully supervised "second stage" trains
    on the labels a WSSS model exported (``tools/make_pseudo_labels.py``:
    one class-index PNG per image, 255 = ignore) with mmseg's usual pipeline
    (``LoadAnnotations``, ``RandomResize``, ``RandomCrop``, ...). Only the
    training set is wrapped; validation keeps the real masks.

    The wrapped dataset need not know a mask folder at all: a WSSS training
    dataset (``with_seg_map=False``) has no ``seg_map_path``, so nothing but
    the pseudo labels can be read. The labels are in the model's class
    indices already, so the samples' ``reduce_zero_label`` is False and
    their ``label_map`` None.

    When the dataset is initialised every image is checked to have a
    pseudo label of its size (only the PNG and image headers are read;
    an image whose EXIF orientation swaps its sides counts as decoded),
    and one error names the missing, wrong-size and non-label files (the
    first ten, and how many) and says how to make them.

    Args:
        dataset (dict | BaseDataset): The dataset (config) to wrap.
        pseudo_label_dir (str): Folder of the pseudo labels.
        seg_map_suffix (str): Suffix of the label files. Defaults to '.png'.
        check_labels (bool): Check every label file when the dataset is
            initialised. Defaults to True.
        check_workers (int): Threads reading the file headers (it is I/O
            bound). Defaults to 8.
        lazy_init (bool): Defer loading and checking to :meth:`full_init`
            (mmengine's Runner calls it). Defaults to False.
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 pseudo_label_dir: str,
                 seg_map_suffix: str = '.png',
                 check_labels: bool = True,
                 check_workers: int = 8,
                 lazy_init: bool = False) -> None:
        if not pseudo_label_dir:
            raise ValueError('PseudoLabelDataset needs `pseudo_label_dir`. ' +
                             HOW_TO_MAKE.format(dir='DIR'))
        if isinstance(dataset, dict):
            self.dataset = DATASETS.build(dataset)
        else:
            self.dataset = dataset
        self.pseudo_label_dir = str(pseudo_label_dir)
        self.seg_map_suffix = seg_map_suffix
        self.check_labels = check_labels
        self.check_workers = check_workers
        self._metainfo = self.dataset.metainfo
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information (a copy)."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Initialise the wrapped dataset, then check the pseudo labels."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        if self.check_labels:
            self._check_label_files()
        self._fully_initialized = True

    # ------------------------------------------------------------------
    def label_path(self, img_path: str) -> str:
        """The pseudo label of an image: ``DIR/<stem><suffix>``."""
        stem = osp.splitext(osp.basename(img_path))[0]
        return osp.join(self.pseudo_label_dir, stem + self.seg_map_suffix)

    def _leaf(self, idx: int) -> Tuple[Any, int]:
        """The innermost dataset holding sample ``idx`` and its index
        there (through Concat/Repeat/ClassBalanced wrappers), whose
        pipeline the sample goes through."""
        ds = self.dataset
        while hasattr(ds, '_get_ori_dataset_idx'):
            if hasattr(ds, 'datasets'):  # ConcatDataset
                which, idx = ds._get_ori_dataset_idx(idx)
                ds = ds.datasets[which]
            else:  # RepeatDataset, ClassBalancedDataset
                idx = ds._get_ori_dataset_idx(idx)
                ds = ds.dataset
        return ds, idx

    def get_data_info(self, idx: int) -> dict:
        """The wrapped sample's info with the pseudo label as its mask."""
        leaf, local = self._leaf(idx)
        return self._with_label(leaf.get_data_info(local))

    def _with_label(self, info: dict) -> dict:
        info['seg_map_path'] = self.label_path(info['img_path'])
        # Pseudo labels hold the model's class indices (0 = background):
        # no reduction or remapping of the original annotation applies.
        info['reduce_zero_label'] = False
        info['label_map'] = None
        info.setdefault('seg_fields', [])
        return info

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> Any:
        if not self._fully_initialized:
            print_log(
                'Please call `full_init()` method manually to accelerate '
                'the speed.',
                logger='current',
                level=logging.WARNING)
            self.full_init()
        leaf, local = self._leaf(idx)
        # As mmengine's BaseDataset: a pipeline may return None to ask for
        # another sample.
        for _ in range(getattr(leaf, 'max_refetch', 1000) + 1):
            data = self._prepare(leaf, local)
            if data is not None:
                return data
            idx = np.random.randint(0, len(self))
            leaf, local = self._leaf(idx)
        raise RuntimeError('Cannot find a valid sample after '
                           f'{getattr(leaf, "max_refetch", 1000)} tries: '
                           'the pipeline keeps returning None.')

    def _prepare(self, leaf: Any, local: int) -> Any:
        info = self._with_label(leaf.get_data_info(local))
        try:
            return leaf.pipeline(info)
        except Exception as e:
            img_path = info['img_path']
            reason = decode_error(img_path)
            if reason is not None:
                raise OSError(f'Unreadable image {img_path}: {reason}. '
                              'Replace the file.') from e
            raise RuntimeError(
                f'Failed to prepare sample {img_path} (pseudo label '
                f'{info["seg_map_path"]}): {type(e).__name__}: {e}') from e

    # ------------------------------------------------------------------
    def _check_label_files(self) -> None:
        """Every image has a readable label of its decoded size.

        Raises:
            FileNotFoundError: The folder or some labels are missing.
            ValueError: Some labels have another size than their image or
                are not class-index maps.
        """
        folder = self.pseudo_label_dir
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'Pseudo-label folder {folder} does not exist. ' +
                HOW_TO_MAKE.format(dir=folder))
        start = time.perf_counter()
        paths = [self.get_data_info(i)['img_path'] for i in range(len(self))]
        workers = max(1, self.check_workers)
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(self._check_one, paths))
        missing = [r[1] for r in results if r[0] == 'missing']
        bad = [r[1] for r in results if r[0] == 'bad']
        if missing or bad:
            raise self._error(folder, len(paths), missing, bad)
        print_log(
            f'Pseudo labels: all {len(paths)} training images have a label '
            f'of their size in {folder} '
            f'({time.perf_counter() - start:.1f} s).',
            logger='current')

    def _check_one(self, img_path: str) -> Tuple[str, Optional[str]]:
        """('ok' | 'missing' | 'bad', description)."""
        label = self.label_path(img_path)
        if not osp.isfile(label):
            return 'missing', label
        try:
            with Image.open(label) as im:
                label_size, mode = im.size, im.mode
        except Exception as e:  # noqa: BLE001
            return 'bad', f'{label}: unreadable ({type(e).__name__}: {e})'
        if mode not in LABEL_MODES:
            return 'bad', (f'{label}: mode {mode}, not a class-index map '
                           f'(one of {LABEL_MODES})')
        size = decoded_size(img_path)
        if size is None:
            # The image check of the wrapped dataset (or the pipeline)
            # reports unreadable images.
            return 'ok', None
        if label_size != size:
            return 'bad', (f'{label}: {label_size[0]}x{label_size[1]}, '
                           f'image {img_path} is {size[0]}x{size[1]} '
                           '(width x height)')
        return 'ok', None

    def _error(self, folder: str, total: int, missing: List[str],
               bad: List[str]) -> Exception:
        lines = []
        if missing:
            lines.append(f'{len(missing)} of the {total} training images '
                         f'have no pseudo label in {folder}, e.g.:')
            lines += [f'  {p}' for p in missing[:MAX_LISTED]]
            if len(missing) > MAX_LISTED:
                lines.append(f'  ... and {len(missing) - MAX_LISTED} more')
        if bad:
            lines.append(f'{len(bad)} pseudo label(s) do not fit their '
                         'image (wrong size, or not a class-index PNG):')
            lines += [f'  {p}' for p in bad[:MAX_LISTED]]
            if len(bad) > MAX_LISTED:
                lines.append(f'  ... and {len(bad) - MAX_LISTED} more')
        lines.append('The pseudo labels must cover the training split of this '
                     'config, one label per image at its size. ' +
                     HOW_TO_MAKE.format(dir=folder))
        message = '\n'.join(lines)
        return FileNotFoundError(message) if missing else ValueError(message)


def decoded_size(img_path: str) -> Optional[Tuple[int, int]]:
    """(width, height) of an image as the pipeline decodes it, from its
    header: PIL's size, swapped when the EXIF orientation transposes it
    (OpenCV applies the orientation). None if the file cannot be opened.
    """
    try:
        with Image.open(img_path) as im:
            width, height = im.size
            orientation = im.getexif().get(0x0112) if im.format in (
                'JPEG', 'TIFF', 'WEBP', 'PNG') else None
    except Exception:  # noqa: BLE001
        return None
    if orientation in _TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height
