# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp
from typing import List, Optional

import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from PIL import Image

from mmseg_wsss.registry import DATASETS
from .cls_labels import (labels_from_mask, load_cls_labels, save_cls_labels,
                         to_multi_hot)


@DATASETS.register_module()
class WSSSBaseDataset(BaseSegDataset):
    """A VOC-layout segmentation dataset whose samples carry image-level
    labels.

    Every sample gets ``gt_cls_label``: a (C-1,) float32 multi-hot vector
    over the foreground classes (entry ``k`` is class id ``k + 1``; class 0
    is background in every metainfo), read from an image-level labels file
    (see :mod:`mmseg_wsss.datasets.cls_labels` for the format).

    Training never reads pixel labels: training datasets are configured
    with ``with_seg_map=False``, so their samples carry no ``seg_map_path``
    and no transform can load a mask. Masks are read only for evaluation,
    and once to derive a missing labels file when ``derive_cls_labels=True``.

    Args:
        cls_label_file (str, optional): Labels file, relative to
            ``data_root`` unless absolute (``.json`` or ToCo's ``.npy``).
            ``None`` means no image-level labels (e.g. a test set without
            labels; such samples have no ``gt_cls_label``).
            Defaults to 'cls_labels.json'.
        with_seg_map (bool): Whether samples carry the mask path. Training
            datasets set False. Defaults to True.
        derive_cls_labels (bool): If the labels file does not exist, derive
            it from the masks of *all* images listed in the split files
            under ``ImageSets/Segmentation`` (``ann_file``'s folder), say so
            in the log, and write it at ``cls_label_file``; later runs read
            only the file. Defaults to False.
        empty_label_policy (str): What to do with an image that has no
            positive class: 'error' (default) raises naming the image;
            'skip' drops it and logs how many were dropped.
        **kwargs: Arguments of :class:`mmseg.datasets.BaseSegDataset`.
    """

    def __init__(self,
                 cls_label_file: Optional[str] = 'cls_labels.json',
                 derive_cls_labels: bool = False,
                 empty_label_policy: str = 'error',
                 with_seg_map: bool = True,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        if empty_label_policy not in ('error', 'skip'):
            raise ValueError('empty_label_policy must be "error" or "skip", '
                             f'got {empty_label_policy!r}')
        self.cls_label_file = cls_label_file
        self.derive_cls_labels = derive_cls_labels
        self.empty_label_policy = empty_label_policy
        self.with_seg_map = with_seg_map
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    # ------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes including background."""
        return len(self.metainfo['classes'])

    def _resolve(self, path: Optional[str]) -> Optional[str]:
        if path is None or osp.isabs(path) or not self.data_root:
            return path
        return osp.join(self.data_root, path)

    def _split_files(self) -> List[str]:
        """All split lists beside ``ann_file`` (for deriving labels)."""
        split_dir = osp.dirname(self.ann_file)
        files = [
            osp.join(split_dir, f) for f in sorted(os.listdir(split_dir))
            if f.endswith('.txt')
        ]
        return files or [self.ann_file]

    def _derive_labels_file(self, path: str) -> None:
        """Derive image-level labels from the masks once and save them."""
        seg_dir = self.data_prefix.get('seg_map_path')
        if not seg_dir:
            raise FileNotFoundError(
                f'Image-level labels file {path} is missing and cannot be '
                'derived: the dataset has no `seg_map_path`.')
        names = set()
        for split in self._split_files():
            with open(split) as f:
                names.update(line.strip() for line in f if line.strip())
        print_log(
            f'Image-level labels file {path} not found: deriving it from '
            f'the masks of {len(names)} images in {seg_dir} (once; later '
            'runs read only the file).',
            logger='current')
        labels = {}
        for name in sorted(names):
            mask_path = osp.join(seg_dir, name + self.seg_map_suffix)
            if not osp.isfile(mask_path):
                raise FileNotFoundError(
                    f'Cannot derive image-level labels: mask {mask_path} of '
                    f'image "{name}" is missing.')
            try:
                mask = np.asarray(Image.open(mask_path))
            except Exception as e:  # noqa: BLE001
                raise OSError(f'Unreadable mask {mask_path}: {e}') from e
            try:
                labels[name] = labels_from_mask(
                    mask, self.num_classes, self.ignore_index)
            except ValueError as e:
                raise ValueError(f'{mask_path}: {e}') from e
        save_cls_labels(path, labels)
        print_log(f'Wrote image-level labels of {len(labels)} images to '
                  f'{path}.', logger='current')

    def load_data_list(self) -> List[dict]:
        """Load the split, check every image and attach image-level labels.

        Raises:
            FileNotFoundError: An image in the split list (or the labels
                file) is missing.
            ValueError: The labels file does not cover the split, holds a
                class id outside the metainfo, or (policy 'error') an image
                has no positive class.
        """
        data_list = super().load_data_list()
        split = self.ann_file or self.data_prefix.get('img_path')
        missing = [d['img_path'] for d in data_list
                   if not osp.isfile(d['img_path'])]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} image(s) listed in {split} do not exist, '
                f'e.g. {missing[0]}' +
                (f' and {missing[1:4]}' if len(missing) > 1 else ''))
        if not self.with_seg_map:
            for d in data_list:  # training never reads pixel labels
                d.pop('seg_map_path', None)

        path = self._resolve(self.cls_label_file)
        if path is None:
            if not self.with_seg_map:
                raise ValueError('A training dataset (with_seg_map=False) '
                                 'needs image-level labels: set '
                                 '`cls_label_file`.')
            return data_list
        if not osp.isfile(path):
            if self.derive_cls_labels:
                self._derive_labels_file(path)
            else:
                raise FileNotFoundError(
                    f'Image-level labels file not found: {path}. Create it '
                    'with a converter in tools/dataset_converters/, or set '
                    '`derive_cls_labels=True` to derive it from the masks.')
        labels = load_cls_labels(path)

        names = [
            osp.splitext(osp.basename(d['img_path']))[0] for d in data_list
        ]
        uncovered = [n for n in names if n not in labels]
        if uncovered:
            raise ValueError(
                f'Labels file {path} does not cover the split {split}: '
                f'{len(uncovered)} image(s) have no entry, e.g. '
                f'{uncovered[:5]}')
        kept, empty = [], []
        for name, info in zip(names, data_list):
            ids = labels[name]
            bad = [i for i in ids if not 0 < i < self.num_classes]
            if bad:
                raise ValueError(
                    f'Labels file {path}: image "{name}" has class id(s) '
                    f'{bad} outside the foreground ids 1..'
                    f'{self.num_classes - 1} of {self.metainfo["classes"]}')
            if not ids:
                empty.append(name)
                continue
            info['gt_cls_label'] = to_multi_hot(ids, self.num_classes)
            kept.append(info)
        if empty:
            if self.empty_label_policy == 'error':
                raise ValueError(
                    f'Labels file {path}: {len(empty)} image(s) of split '
                    f'{split} have no positive class, e.g. {empty[:5]}. Set '
                    "`empty_label_policy='skip'` to drop them.")
            print_log(
                f'Skipped {len(empty)} image(s) without a positive class in '
                f'{split} (empty_label_policy="skip").',
                logger='current',
                level=30)
        return kept

    def prepare_data(self, idx: int):
        """Run the pipeline, naming the image when a transform fails."""
        data_info = self.get_data_info(idx)
        try:
            return self.pipeline(data_info)
        except Exception as e:
            img_path = data_info.get('img_path')
            if img_path and isinstance(e, (AttributeError, TypeError)) and \
                    _unreadable(img_path):
                raise OSError(f'Unreadable image {img_path} (not a valid '
                              'image file).') from e
            raise RuntimeError(
                f'Failed to prepare sample {img_path}: '
                f'{type(e).__name__}: {e}') from e


def _unreadable(path: str) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        return False
    except Exception:  # noqa: BLE001
        return True

