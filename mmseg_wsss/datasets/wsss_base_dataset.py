# Copyright (c) OpenMMLab. All rights reserved.
import logging
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.logging import MMLogger, print_log
from mmseg.datasets import BaseSegDataset
from PIL import Image

from mmseg_wsss.registry import DATASETS
from .cls_labels import (labels_from_mask, load_cls_labels, save_cls_labels,
                         to_multi_hot)
from .image_check import (bad_images_error, decode_error, default_log_file,
                          find_bad_images)


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
            only the file. In a distributed run only rank 0 writes it (the
            other ranks use their own derivation). If it cannot be written
            (read-only folder), the labels are used from memory with a
            warning. Defaults to False.
        empty_label_policy (str): What to do with an image that has no
            positive class: 'error' (default) raises naming the image;
            'skip' drops it and logs how many were dropped.
        check_images (bool): Decode every image of the split when the
            dataset is built and raise one error naming all the files that
            fail (truncated, empty, not an image), instead of stopping at
            the iteration that first reads one. See
            :mod:`mmseg_wsss.datasets.image_check`. In a distributed run the
            processes of each node share the work. Defaults to False.
        check_images_workers (int): Worker processes of the image check (per
            process of a distributed run; 0 or 1: none). Defaults to 2.
        **kwargs: Arguments of :class:`mmseg.datasets.BaseSegDataset`.
    """

    def __init__(self,
                 cls_label_file: Optional[str] = 'cls_labels.json',
                 derive_cls_labels: bool = False,
                 empty_label_policy: str = 'error',
                 check_images: bool = False,
                 check_images_workers: int = 2,
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
        self.check_images = check_images
        self.check_images_workers = check_images_workers
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

    def _derive_labels(self, path: str) -> Dict[str, List[int]]:
        """Derive image-level labels from the masks and save them once.

        Only rank 0 writes ``path`` and logs: mmengine's logger shows INFO
        on rank 0 only, and a faster rank writing first used to leave rank 0
        nothing to derive, so the message was lost. The other ranks derive
        the same labels for themselves (or read the file if rank 0 was
        faster), which needs no collective call. The write is atomic.
        """
        seg_dir = self.data_prefix.get('seg_map_path')
        if not seg_dir:
            raise FileNotFoundError(
                f'Image-level labels file {path} is missing and cannot be '
                'derived: the dataset has no `seg_map_path`.')
        names = set()
        for split in self._split_files():
            with open(split) as f:
                names.update(line.strip() for line in f if line.strip())
        writer = get_dist_info()[0] == 0
        if writer:
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
        if not writer:
            return labels
        try:
            save_cls_labels(path, labels)
        except OSError as e:
            # A read-only data root must not stop the run: the labels are
            # in memory, only the saving is lost.
            print_log(
                f'Could not save the derived image-level labels to {path} '
                f'({type(e).__name__}: {e}); using them from memory, and '
                'every run will derive them again. To keep them, set the '
                "datasets' `cls_label_file` to a writable path (absolute, "
                'or relative to data_root), e.g. --cfg-options '
                'train_dataloader.dataset.cls_label_file='
                '/abs/path/work_dirs/cls_labels.json (and the same for '
                'val_dataloader/test_dataloader).',
                logger='current',
                level=logging.WARNING)
            return labels
        print_log(f'Wrote image-level labels of {len(labels)} images to '
                  f'{path}.', logger='current')
        return labels

    def _bad_images_log_file(self, split: str) -> str:
        """Where the full list of bad images goes: beside the run's log
        file if there is one, else in the temporary folder."""
        log_file = MMLogger.get_current_instance().log_file
        if log_file:
            name = osp.splitext(osp.basename(split))[0]
            return osp.join(
                osp.dirname(osp.abspath(log_file)), f'bad_images_{name}.txt')
        return default_log_file(split)

    def _check_image_files(self, data_list: List[dict], split: str) -> None:
        """Decode every image once (``check_images=True``).

        In a distributed run each node decodes every image once, its
        processes taking every n-th image (torchrun's ``LOCAL_RANK`` and
        ``LOCAL_WORLD_SIZE``; the global rank and world size otherwise), and
        all ranks gather the bad files, so every rank raises the same error.
        """
        paths = [d['img_path'] for d in data_list]
        rank, world = get_dist_info()
        index, count = _shard(rank, world)
        start = time.perf_counter()
        # A progress bar only where the check takes a while.
        bad = find_bad_images(
            paths[index::count],
            workers=self.check_images_workers,
            progress=rank == 0 and len(paths) >= 1000)
        if world > 1:
            order = {p: i for i, p in enumerate(paths)}
            merged = {b for part in all_gather_object(bad) for b in part}
            bad = sorted(merged, key=lambda b: order[b[0]])
        if bad:
            raise bad_images_error(
                bad,
                len(paths),
                split,
                log_file=self._bad_images_log_file(split),
                hint='(Set `check_images=False` in the dataset config to '
                'skip this check.)')
        per = f' per process, {count} processes' if count > 1 else ''
        print_log(
            f'Image check: all {len(paths)} images of {split} decode '
            f'({time.perf_counter() - start:.1f} s, '
            f'{self.check_images_workers} worker(s){per}).',
            logger='current')

    def load_data_list(self) -> List[dict]:
        """Load the split, check every image and attach image-level labels.

        Raises:
            FileNotFoundError: An image in the split list (or the labels
                file) is missing.
            ValueError: The split lists no image, the labels file does not
                cover the split, holds a class id outside the metainfo, or
                (policy 'error') an image has no positive class.
            CorruptImageError: ``check_images=True`` and some images cannot
                be decoded.
        """
        data_list = super().load_data_list()
        split = self.ann_file or self.data_prefix.get('img_path')
        if not data_list:
            # mmengine would fail later with "need at least one array to
            # concatenate" (BaseDataset._serialize_data).
            if self.ann_file:
                raise ValueError(
                    f'Split file {self.ann_file} is empty: it lists no '
                    'image. Write one image name (file name without '
                    'extension) per line, or point `ann_file` at another '
                    'split.')
            raise ValueError(
                f'No image with suffix {self.img_suffix!r} found in '
                f'{split}: the dataset would be empty.')
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
            if self.check_images:
                self._check_image_files(data_list, split)
            return data_list
        if osp.isfile(path):
            labels = load_cls_labels(path)
        elif self.derive_cls_labels:
            labels = self._derive_labels(path)
        else:
            raise FileNotFoundError(
                f'Image-level labels file not found: {path}. Create it '
                'with a converter in tools/dataset_converters/, or set '
                '`derive_cls_labels=True` to derive it from the masks.')

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
            if not kept:
                raise ValueError(
                    f'Labels file {path}: none of the {len(empty)} images '
                    f'of split {split} has a positive class, so '
                    "empty_label_policy='skip' leaves no image. Check that "
                    'the labels file belongs to this dataset.')
            print_log(
                f'Skipped {len(empty)} image(s) without a positive class in '
                f'{split} (empty_label_policy="skip").',
                logger='current',
                level=logging.WARNING)
        if self.check_images:
            self._check_image_files(kept, split)
        return kept

    def prepare_data(self, idx: int):
        """Run the pipeline, naming the image when a transform fails."""
        data_info = self.get_data_info(idx)
        try:
            return self.pipeline(data_info)
        except Exception as e:
            img_path = data_info.get('img_path')
            # mmcv asserts (or a later transform trips over None) when cv2
            # cannot decode the file: say what is wrong with it.
            reason = decode_error(img_path) if img_path else None
            if reason is not None:
                raise OSError(
                    f'Unreadable image {img_path}: {reason}. Replace the '
                    'file; `check_images=True` in the dataset config finds '
                    'every such file when the dataset is built.') from e
            raise RuntimeError(
                f'Failed to prepare sample {img_path}: '
                f'{type(e).__name__}: {e}') from e


def _shard(rank: int, world: int) -> Tuple[int, int]:
    """(index, count) of this process's share of a per-node image check."""
    if world <= 1:
        return 0, 1
    try:
        local_rank = int(os.environ['LOCAL_RANK'])
        local_world = int(os.environ['LOCAL_WORLD_SIZE'])
    except (KeyError, ValueError):
        return rank, world
    if 0 <= local_rank < local_world <= world:
        return local_rank, local_world
    return rank, world
