# Copyright (c) OpenMMLab. All rights reserved.
"""Merge PASCAL VOC 2012 with the SBD augmentation (``train_aug``) and write
the image-level labels file.

Usage::

    python tools/dataset_converters/voc_aug.py DEVKIT_PATH AUG_PATH \
        [-o OUT_DIR] [--nproc N]

``DEVKIT_PATH`` is the ``VOCdevkit`` folder (holding ``VOC2012/``) and
``AUG_PATH`` the SBD ``benchmark_RELEASE`` folder (holding ``dataset/cls``,
``dataset/train.txt`` and ``dataset/val.txt``). The script writes

* ``OUT_DIR`` (default ``DEVKIT_PATH/VOC2012/SegmentationClassAug``): one
  palette PNG of class ids per image of SBD train/val and VOC train/val
  (12,031 on the real data). Where VOC 2012 has an official mask
  (``SegmentationClass``) it is used, with its 255 boundaries; otherwise
  the SBD ``GTcls.Segmentation`` map is used.
* ``VOC2012/ImageSets/Segmentation/train_aug.txt``: (SBD train | SBD val |
  VOC train) - VOC val, sorted (10,582 images on the real data) and
  ``aug.txt``: ``train_aug`` - VOC train, sorted (9,118).
* ``VOC2012/cls_labels.json``: the foreground class ids of every image
  written above (covering ``train_aug``, ``train`` and ``val``), derived
  from the masks as the papers' label files are.
"""
import argparse
import importlib.util
import os.path as osp
import sys
import warnings
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import (mkdir_or_exist, track_parallel_progress,
                            track_progress)
from PIL import Image

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if importlib.util.find_spec('mmseg_wsss') is None:  # run from a checkout
    sys.path.insert(0, REPO_ROOT)

from mmseg_wsss.datasets.cls_labels import (  # noqa: E402
    IGNORE_INDEX, default_palette, labels_from_mask, save_cls_labels)
from mmseg_wsss.datasets.metainfo import VOC_CLASSES  # noqa: E402

TRAIN_AUG_LEN = 10582
NUM_CLASSES = len(VOC_CLASSES)


def read_list(path: str) -> List[str]:
    """Read an image-name list (one name a line, blank lines skipped).

    Args:
        path (str): A ``.txt`` split file.

    Returns:
        list[str]: The names, in file order.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Split list not found: {path}')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def write_list(path: str, names: Sequence[str]) -> None:
    """Write image names one a line."""
    with open(path, 'w') as f:
        f.writelines(name + '\n' for name in names)


def build_lists(sbd_train: Sequence[str], sbd_val: Sequence[str],
                voc_train: Sequence[str],
                voc_val: Sequence[str]) -> Tuple[List[str], List[str]]:
    """The ``train_aug`` and ``aug`` splits.

    Args:
        sbd_train (Sequence[str]): SBD ``train.txt`` names.
        sbd_val (Sequence[str]): SBD ``val.txt`` names.
        voc_train (Sequence[str]): VOC 2012 segmentation ``train.txt``.
        voc_val (Sequence[str]): VOC 2012 segmentation ``val.txt``.

    Returns:
        tuple[list[str], list[str]]: ``train_aug`` = (SBD train | SBD val |
        VOC train) - VOC val and ``aug`` = ``train_aug`` - VOC train, both
        sorted.
    """
    train_aug = (set(sbd_train) | set(sbd_val) | set(voc_train)) - set(voc_val)
    aug = train_aug - set(voc_train)
    return sorted(train_aug), sorted(aug)


def _unwrap(obj):
    """Strip the 1x1 object arrays ``scipy.io.loadmat`` wraps values in."""
    while isinstance(obj, np.ndarray) and obj.dtype == object \
            and obj.size == 1:
        obj = obj.flat[0]
    return obj


def load_sbd_mask(mat_path: str) -> np.ndarray:
    """Read the class map of an SBD ``dataset/cls/*.mat`` file.

    Handles what :func:`scipy.io.loadmat` returns for a MATLAB struct
    ``GTcls`` with a ``Segmentation`` field (the SBD files and files written
    by :func:`scipy.io.savemat` alike).

    Args:
        mat_path (str): Path of the ``.mat`` file.

    Returns:
        np.ndarray: (H, W) uint8 class map (ids 0..20, no boundary).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is unreadable, lacks ``GTcls.Segmentation`` or the
            map is not a 2-D map of integers in [0, 255].
    """
    from scipy.io import loadmat
    if not osp.isfile(mat_path):
        raise FileNotFoundError(f'SBD annotation not found: {mat_path}')
    try:
        data = loadmat(mat_path, struct_as_record=False)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f'Unreadable .mat file {mat_path}: {e}') from e
    if 'GTcls' not in data:
        keys = sorted(k for k in data if not k.startswith('__'))
        raise ValueError(f'{mat_path} has no variable "GTcls" (found '
                         f'{keys}); expected an SBD dataset/cls/*.mat file.')
    gtcls = _unwrap(data['GTcls'])
    if hasattr(gtcls, '_fieldnames'):  # scipy mat_struct
        seg = getattr(gtcls, 'Segmentation', None)
    elif isinstance(gtcls, np.ndarray) and gtcls.dtype.names:  # record
        seg = gtcls.flat[0]['Segmentation'] \
            if 'Segmentation' in gtcls.dtype.names else None
    elif isinstance(gtcls, dict):
        seg = gtcls.get('Segmentation')
    else:
        seg = None
    if seg is None:
        raise ValueError(f'{mat_path}: struct GTcls has no field '
                         '"Segmentation".')
    seg = np.asarray(_unwrap(seg))
    if seg.ndim != 2 or seg.size == 0:
        raise ValueError(f'{mat_path}: GTcls.Segmentation must be a 2-D '
                         f'class map, got shape {seg.shape}.')
    if not np.issubdtype(seg.dtype, np.integer):
        if not (np.issubdtype(seg.dtype, np.floating)
                and np.array_equal(seg, np.round(seg))):
            raise ValueError(f'{mat_path}: GTcls.Segmentation must hold '
                             f'integer class ids, got dtype {seg.dtype}.')
    if seg.min() < 0 or seg.max() > 255:
        raise ValueError(f'{mat_path}: GTcls.Segmentation values '
                         f'[{seg.min()}, {seg.max()}] do not fit uint8.')
    return seg.astype(np.uint8)


def load_voc_mask(png_path: str) -> np.ndarray:
    """Read an official VOC ``SegmentationClass`` PNG as class indices.

    Args:
        png_path (str): Path of the palette PNG.

    Returns:
        np.ndarray: (H, W) uint8 class map (255 on object boundaries).

    Raises:
        ValueError: If the PNG is not an index image (mode ``P`` or ``L``).
    """
    with Image.open(png_path) as img:
        if img.mode not in ('P', 'L'):
            raise ValueError(
                f'{png_path}: expected a palette (index) PNG as shipped with '
                f'VOC 2012, got mode {img.mode}; colour masks are not '
                'supported.')
        return np.array(img, dtype=np.uint8)


def save_index_png(mask: np.ndarray,
                   path: str,
                   num_classes: int = NUM_CLASSES) -> None:
    """Save a class map as a palette PNG.

    The palette is :func:`default_palette` (``num_classes``) padded to 256
    entries with the rest of the VOC colour map, so the ignore index 255 is
    drawn (224, 224, 192) as in VOC. Reading the PNG with PIL gives the
    class ids back.
    """
    palette = default_palette(num_classes)
    palette += default_palette(256)[num_classes:]
    img = Image.fromarray(mask.astype(np.uint8), mode='P')
    img.putpalette([c for rgb in palette for c in rgb])
    img.save(path, format='PNG')


def convert_one(name: str, voc_seg_dir: str, sbd_cls_dir: str,
                out_dir: str) -> Tuple[str, List[int], str]:
    """Write the mask of one image and derive its image-level labels.

    Args:
        name (str): Image name without extension.
        voc_seg_dir (str): VOC 2012 ``SegmentationClass`` folder.
        sbd_cls_dir (str): SBD ``dataset/cls`` folder.
        out_dir (str): Output folder for ``<name>.png``.

    Returns:
        tuple[str, list[int], str]: The name, its foreground class ids and
        the mask's source ('voc' or 'sbd').
    """
    voc_png = osp.join(voc_seg_dir, name + '.png')
    if osp.isfile(voc_png):
        mask, source = load_voc_mask(voc_png), 'voc'
        src_path = voc_png
    else:
        src_path = osp.join(sbd_cls_dir, name + '.mat')
        if not osp.isfile(src_path):
            raise FileNotFoundError(
                f'No mask for image "{name}": neither {voc_png} nor '
                f'{src_path} exists.')
        mask, source = load_sbd_mask(src_path), 'sbd'
    try:
        labels = labels_from_mask(mask, NUM_CLASSES, IGNORE_INDEX)
    except ValueError as e:
        raise ValueError(f'{src_path}: {e}') from e
    save_index_png(mask, osp.join(out_dir, name + '.png'))
    return name, labels, source


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Merge PASCAL VOC 2012 and SBD into train_aug (masks in '
        'SegmentationClassAug, lists train_aug.txt/aug.txt) and write the '
        'image-level labels file VOC2012/cls_labels.json')
    parser.add_argument(
        'devkit_path', help='VOCdevkit folder (the one holding VOC2012/)')
    parser.add_argument(
        'aug_path',
        help='SBD benchmark_RELEASE folder (the one holding dataset/cls)')
    parser.add_argument(
        '-o',
        '--out_dir',
        '--out-dir',
        dest='out_dir',
        help='output mask folder (default: '
        'DEVKIT_PATH/VOC2012/SegmentationClassAug)')
    parser.add_argument(
        '--nproc', default=1, type=int, help='number of worker processes')
    return parser.parse_args(argv)


def _check_exists(path: str, what: str, is_dir: bool = True) -> None:
    ok = osp.isdir(path) if is_dir else osp.isfile(path)
    if not ok:
        raise FileNotFoundError(f'{what} not found: {path}')


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, List[int]]:
    """Run the conversion; returns the labels written to the labels file."""
    args = parse_args(argv)
    voc_root = osp.join(args.devkit_path, 'VOC2012')
    split_dir = osp.join(voc_root, 'ImageSets', 'Segmentation')
    voc_seg_dir = osp.join(voc_root, 'SegmentationClass')
    sbd_dir = osp.join(args.aug_path, 'dataset')
    sbd_cls_dir = osp.join(sbd_dir, 'cls')
    if not osp.isdir(voc_root) and osp.isdir(
            osp.join(args.devkit_path, 'JPEGImages')):
        raise FileNotFoundError(
            f'{voc_root} not found: DEVKIT_PATH must be the VOCdevkit folder '
            f'holding VOC2012/, not VOC2012 itself ({args.devkit_path}).')
    _check_exists(voc_root, 'VOC 2012 folder')
    _check_exists(osp.join(voc_root, 'JPEGImages'), 'VOC 2012 images')
    _check_exists(voc_seg_dir, 'VOC 2012 masks')
    _check_exists(sbd_cls_dir, 'SBD class annotations (dataset/cls)')
    voc_train = read_list(osp.join(split_dir, 'train.txt'))
    voc_val = read_list(osp.join(split_dir, 'val.txt'))
    sbd_train = read_list(osp.join(sbd_dir, 'train.txt'))
    sbd_val = read_list(osp.join(sbd_dir, 'val.txt'))

    out_dir = args.out_dir or osp.join(voc_root, 'SegmentationClassAug')
    mkdir_or_exist(out_dir)
    names = sorted(
        set(sbd_train) | set(sbd_val) | set(voc_train)
        | set(voc_val))
    print(f'Writing {len(names)} masks to {out_dir} (VOC 2012 masks where '
          'they exist, SBD otherwise)')
    func = partial(
        convert_one,
        voc_seg_dir=voc_seg_dir,
        sbd_cls_dir=sbd_cls_dir,
        out_dir=out_dir)
    if args.nproc > 1:
        results = track_parallel_progress(func, names, nproc=args.nproc)
    else:
        results = track_progress(func, names)
    labels = {name: ids for name, ids, _ in results}
    n_voc = sum(source == 'voc' for _, _, source in results)
    print(f'{n_voc} masks from VOC 2012, {len(results) - n_voc} from SBD')

    train_aug, aug = build_lists(sbd_train, sbd_val, voc_train, voc_val)
    write_list(osp.join(split_dir, 'train_aug.txt'), train_aug)
    write_list(osp.join(split_dir, 'aug.txt'), aug)
    print(f'train_aug: {len(train_aug)} images, aug: {len(aug)}, '
          f'train: {len(voc_train)}, val: {len(voc_val)} '
          f'(lists in {split_dir})')
    if len(train_aug) != TRAIN_AUG_LEN:
        warnings.warn(f'train_aug has {len(train_aug)} images, not the '
                      f'{TRAIN_AUG_LEN} of the full VOC 2012 + SBD data; '
                      'check the inputs unless this is intended.')
    img_dir = osp.join(voc_root, 'JPEGImages')
    no_img = [
        n for n in sorted(set(train_aug) | set(voc_val))
        if not osp.isfile(osp.join(img_dir, n + '.jpg'))
    ]
    if no_img:
        warnings.warn(f'{len(no_img)} listed image(s) have no JPEG in '
                      f'{img_dir}, e.g. {no_img[:5]}')
    empty = [n for n, ids in labels.items() if not ids]
    if empty:
        warnings.warn(f'{len(empty)} image(s) have no foreground class in '
                      f'their mask, e.g. {empty[:5]}')

    labels_path = osp.join(voc_root, 'cls_labels.json')
    save_cls_labels(labels_path, labels)
    print(f'Wrote image-level labels of {len(labels)} images to '
          f'{labels_path}')
    print('Done!')
    return labels


if __name__ == '__main__':
    main()
