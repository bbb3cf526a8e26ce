# Copyright (c) OpenMMLab. All rights reserved.
"""Convert COCO-Stuff 10K (v1.1) to a VOC-layout dataset of the 20 PASCAL
VOC classes, with image-level labels.

The COCO-Stuff benchmark of ASDT (TIP 2023, Table 2): "Following EDAM, we
selected 9000 images that belong to the 20 categories of PASCAL VOC for
training and set pixels of other categories as background"; the 1,000 test
images are the evaluation split.

Usage::

    python tools/dataset_converters/cocostuff10k.py COCOSTUFF_ROOT \
        [-o OUT_DIR] [--nproc N] [--link-images | --copy-images]

``COCOSTUFF_ROOT`` is the unzipped ``cocostuff-10k-v1.1.zip``::

    images/COCO_train2014_<id>.jpg        10,000 images
    annotations/COCO_train2014_<id>.mat   10,000 label maps (variable S)
    imageLists/train.txt                  9,000 names
    imageLists/test.txt                   1,000 names

Written at ``OUT_DIR`` (default: the folder ``cocostuff10k_voc20`` beside
``COCOSTUFF_ROOT``, e.g. ``data/cocostuff10k`` ->
``data/cocostuff10k_voc20``, the ``data_root`` of
``configs/_base_/datasets/cocostuff10k-voc20_321x321.py``)::

    JPEGImages/<name>.jpg              symlinks (default) or copies
    SegmentationClass/<name>.png       palette PNG of VOC class ids
    ImageSets/Segmentation/train.txt   the 9,000 names of imageLists/train.txt
    ImageSets/Segmentation/val.txt     the 1,000 names of imageLists/test.txt
    ImageSets/Segmentation/test.txt    the same as val.txt
    classes.txt                        the 21 VOC class names
    cls_labels.json                    VOC class ids per image (all 10,000)

Label maps. In v1.1 the ``S`` map of an annotation file holds COCO-Stuff ids
(nightrome/cocostuff10k README, "Label Names & Indices", and
``dataset/cocostuff-labels.txt``): 0 ``unlabeled``, 1..91 the COCO thing
categories with COCO's own category ids (1 person, 2 bicycle, ..., 90
toothbrush, with the 11 ids COCO never annotates, e.g. 12 street sign),
92..182 the stuff classes. (v1.0 was shifted by one, 1 = unlabeled, and had
172 ``names``; such files are refused.) Each pixel becomes:

* one of the 20 VOC classes for its COCO counterpart
  (``COCOSTUFF_TO_VOC``): 5 airplane -> 1 aeroplane, 2 bicycle -> 2,
  16 bird -> 3, 9 boat -> 4, 44 bottle -> 5, 6 bus -> 6, 3 car -> 7,
  17 cat -> 8, 62 chair -> 9, 21 cow -> 10, 67 dining table -> 11
  diningtable, 18 dog -> 12, 19 horse -> 13, 4 motorcycle -> 14 motorbike,
  1 person -> 15, 64 potted plant -> 16 pottedplant, 20 sheep -> 17,
  63 couch -> 18 sofa, 7 train -> 19, 72 tv -> 20 tvmonitor;
* 0 (background) for every other labelled class: the other 60 things
  (truck, giraffe, ...) and all 91 stuff classes (including ``table``,
  ``plant-other`` and ``flower``, which are not VOC's dining table and
  potted plant);
* 255 (ignored) where ``S`` is 0 (unlabeled).

When an annotation file carries COCO-Stuff's ``names`` list, the names of
the 20 mapped ids are checked against it.

Images. All images of both lists are kept, **also those without any VOC
class** (their masks are background and 255, their labels empty): the
paper's 9,000 training images are the whole of ``imageLists/train.txt``
(9,000 names, as ``models/deeplab/cocostuff/list/train.txt`` of
nightrome/cocostuff10k; ``test.txt`` has 1,000), so no selection by class
is made. The converter prints how many images of each split have no VOC
class; the dataset config drops them when it is built
(``empty_label_policy='skip'``), since a WSSS dataset needs a positive class
per image.

``cls_labels.json`` is derived from the written masks
(``labels_from_mask(mask, 21)``): the VOC classes among the labelled
pixels.
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
    IGNORE_INDEX, labels_from_mask, save_cls_labels)
from mmseg_wsss.datasets.metainfo import VOC_CLASSES  # noqa: E402

# The palette PNG writer and the image placement of the COCO converter.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from coco14 import place_image, save_index_png  # noqa: E402

NUM_CLASSES = len(VOC_CLASSES)
# COCO-Stuff v1.1 ids: 0 unlabeled, 1..91 things, 92..182 stuff.
MAX_COCOSTUFF_ID = 182
NUM_V11_NAMES = 182  # the `names` of a v1.1 file: ids 1..182
NUM_V10_NAMES = 172  # v1.0: 1 unlabeled, 2..81 things, 82..172 stuff
# VOC class name -> (COCO-Stuff id, COCO-Stuff name), in VOC order.
VOC_TO_COCOSTUFF = {
    'aeroplane': (5, 'airplane'),
    'bicycle': (2, 'bicycle'),
    'bird': (16, 'bird'),
    'boat': (9, 'boat'),
    'bottle': (44, 'bottle'),
    'bus': (6, 'bus'),
    'car': (3, 'car'),
    'cat': (17, 'cat'),
    'chair': (62, 'chair'),
    'cow': (21, 'cow'),
    'diningtable': (67, 'dining table'),
    'dog': (18, 'dog'),
    'horse': (19, 'horse'),
    'motorbike': (4, 'motorcycle'),
    'person': (1, 'person'),
    'pottedplant': (64, 'potted plant'),
    'sheep': (20, 'sheep'),
    'sofa': (63, 'couch'),
    'train': (7, 'train'),
    'tvmonitor': (72, 'tv'),
}
COCOSTUFF_TO_VOC = {
    cs_id: VOC_CLASSES.index(voc)
    for voc, (cs_id, _) in VOC_TO_COCOSTUFF.items()
}
COCOSTUFF_NAMES = {cs_id: name for cs_id, name in VOC_TO_COCOSTUFF.values()}
SPLITS = (('train', 'train.txt'), ('val', 'test.txt'))
EXPECTED_LEN = dict(train=9000, val=1000)
LAYOUT = ('expected the unzipped cocostuff-10k-v1.1.zip: COCOSTUFF_ROOT/'
          'images/<name>.jpg, COCOSTUFF_ROOT/annotations/<name>.mat and '
          'COCOSTUFF_ROOT/imageLists/{train,test}.txt')


def build_lut() -> np.ndarray:
    """(183,) uint8 table from COCO-Stuff id to VOC class id (0 unlabeled
    -> 255, the 20 VOC counterparts -> 1..20, everything else -> 0)."""
    lut = np.zeros(MAX_COCOSTUFF_ID + 1, dtype=np.uint8)
    lut[0] = IGNORE_INDEX
    for cs_id, voc_id in COCOSTUFF_TO_VOC.items():
        lut[cs_id] = voc_id
    return lut


LUT = build_lut()


def to_voc(label_map: np.ndarray) -> np.ndarray:
    """Map a COCO-Stuff v1.1 label map to VOC class ids.

    Args:
        label_map (np.ndarray): (H, W) integer COCO-Stuff ids in
            [0, 182].

    Returns:
        np.ndarray: (H, W) uint8 map (0 background, 1..20, 255 unlabeled).
    """
    return LUT[label_map]


def read_list(path: str) -> List[str]:
    """Read an image-name list (one name a line, blank lines skipped;
    an extension ``.jpg`` / ``.mat`` is dropped).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'COCO-Stuff image list not found: {path} '
                                f'({LAYOUT})')
    names = []
    with open(path) as f:
        for line in f:
            name = line.strip()
            if not name:
                continue
            stem, ext = osp.splitext(name)
            names.append(stem if ext.lower() in ('.jpg', '.mat') else name)
    return names


def _mat_strings(value) -> List[str]:
    """The strings of a MATLAB cell array or char matrix read by
    ``scipy.io.loadmat``."""
    out = []
    for item in np.asarray(value).ravel():
        while isinstance(item, np.ndarray):
            item = item.ravel()[0] if item.size else ''
        out.append(str(item).strip())
    return out


def check_names(names: Sequence[str], mat_path: str) -> None:
    """Check a file's ``names`` against the v1.1 ids of the VOC classes.

    Raises:
        ValueError: The file is v1.0 (172 names) or its names of the 20
            mapped ids differ.
    """
    if len(names) == NUM_V10_NAMES:
        raise ValueError(
            f'{mat_path} is a COCO-Stuff v1.0 annotation (172 names, 1 = '
            'unlabeled, things 2..81); this converter reads v1.1 '
            '(0 = unlabeled, things 1..91 with COCO ids): download '
            'cocostuff-10k-v1.1.zip.')
    if len(names) != NUM_V11_NAMES:
        raise ValueError(f'{mat_path}: "names" lists {len(names)} classes, '
                         f'not the {NUM_V11_NAMES} of COCO-Stuff v1.1.')
    wrong = [(cs_id, names[cs_id - 1], expected)
             for cs_id, expected in sorted(COCOSTUFF_NAMES.items())
             if names[cs_id - 1].lower() != expected]
    if wrong:
        raise ValueError(
            f'{mat_path}: the class names of ids the converter maps to VOC '
            'differ from COCO-Stuff v1.1 (id, file, expected): '
            f'{wrong}')


def load_label_map(mat_path: str) -> np.ndarray:
    """Read the ``S`` label map of a COCO-Stuff 10K ``.mat`` file.

    Args:
        mat_path (str): Path of the ``.mat`` file.

    Returns:
        np.ndarray: (H, W) int64 COCO-Stuff v1.1 ids in [0, 182].

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is unreadable, lacks ``S``, ``S`` is not a 2-D
            map of integer ids in [0, 182], or its ``names`` are not v1.1's.
    """
    from scipy.io import loadmat
    if not osp.isfile(mat_path):
        raise FileNotFoundError(f'COCO-Stuff annotation not found: '
                                f'{mat_path}')
    try:
        data = loadmat(mat_path, variable_names=['S', 'names'])
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5)
        raise ValueError(f'{mat_path} is a MATLAB v7.3 (HDF5) file, which '
                         'scipy.io.loadmat cannot read; the files of '
                         f'cocostuff-10k-v1.1.zip are not ({e}).') from e
    except Exception as e:  # noqa: BLE001
        raise ValueError(f'Unreadable .mat file {mat_path}: {e}') from e
    if 'S' not in data:
        raise ValueError(f'{mat_path} has no variable "S"; expected a '
                         'COCO-Stuff 10K annotations/*.mat file.')
    if 'names' in data:
        check_names(_mat_strings(data['names']), mat_path)
    seg = np.asarray(data['S'])
    if seg.ndim != 2 or seg.size == 0:
        raise ValueError(f'{mat_path}: S must be a 2-D label map, got '
                         f'shape {seg.shape}.')
    if not np.issubdtype(seg.dtype, np.integer):
        if not (np.issubdtype(seg.dtype, np.floating)
                and np.array_equal(seg, np.round(seg))):
            raise ValueError(f'{mat_path}: S must hold integer label ids, '
                             f'got dtype {seg.dtype}.')
    low, high = seg.min(), seg.max()
    if low < 0 or high > MAX_COCOSTUFF_ID:
        raise ValueError(f'{mat_path}: S values [{low}, {high}] outside the '
                         f'COCO-Stuff v1.1 ids 0..{MAX_COCOSTUFF_ID}.')
    return seg.astype(np.int64)


def convert_one(name: str,
                img_dir: str,
                ann_dir: str,
                out_dir: str,
                copy: bool = False) -> Tuple[str, List[int]]:
    """Write the VOC mask and the image of one COCO-Stuff image.

    Args:
        name (str): Image name without extension.
        img_dir (str): ``COCOSTUFF_ROOT/images``.
        ann_dir (str): ``COCOSTUFF_ROOT/annotations``.
        out_dir (str): Output root (VOC layout).
        copy (bool): Copy the image instead of symlinking it.

    Returns:
        tuple[str, list[int]]: The name and its VOC class ids (1..20).

    Raises:
        ValueError: The label map's size differs from the image's.
    """
    mat_path = osp.join(ann_dir, name + '.mat')
    img_path = osp.join(img_dir, name + '.jpg')
    seg = load_label_map(mat_path)
    if not osp.isfile(img_path):
        raise FileNotFoundError(f'COCO-Stuff image not found: {img_path}')
    with Image.open(img_path) as img:  # reads the header only
        width, height = img.size
    if seg.shape != (height, width):
        raise ValueError(f'{mat_path}: S is {seg.shape[0]}x{seg.shape[1]} '
                         f'(HxW) but {img_path} is {height}x{width}.')
    mask = to_voc(seg)
    save_index_png(
        mask,
        osp.join(out_dir, 'SegmentationClass', name + '.png'),
        num_classes=NUM_CLASSES)
    place_image(
        img_path, osp.join(out_dir, 'JPEGImages', name + '.jpg'), copy=copy)
    return name, labels_from_mask(mask, NUM_CLASSES, IGNORE_INDEX)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert COCO-Stuff 10K v1.1 to a VOC-layout dataset of '
        'the 20 PASCAL VOC classes (other classes background, unlabeled '
        '255): JPEGImages, SegmentationClass, ImageSets/Segmentation/'
        '{train,val,test}.txt, classes.txt, cls_labels.json')
    parser.add_argument(
        'cocostuff_root',
        help='the unzipped cocostuff-10k-v1.1.zip (holding images/, '
        'annotations/ and imageLists/)')
    parser.add_argument(
        '-o',
        '--out_dir',
        '--out-dir',
        dest='out_dir',
        help='output root (default: cocostuff10k_voc20 beside '
        'COCOSTUFF_ROOT)')
    parser.add_argument(
        '--nproc', default=1, type=int, help='number of worker processes')
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--link-images',
        dest='copy_images',
        action='store_false',
        help='symlink the images into JPEGImages/ (default)')
    group.add_argument(
        '--copy-images',
        dest='copy_images',
        action='store_true',
        help='copy the images into JPEGImages/ instead of symlinking')
    parser.set_defaults(copy_images=False)
    return parser.parse_args(argv)


def _check_dir(path: str, what: str) -> None:
    if not osp.isdir(path):
        raise FileNotFoundError(f'{what} not found: {path} ({LAYOUT})')


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, List[int]]:
    """Run the conversion; returns the labels written to the labels file."""
    args = parse_args(argv)
    root = args.cocostuff_root
    _check_dir(root, 'COCO-Stuff 10K root')
    img_dir = osp.join(root, 'images')
    ann_dir = osp.join(root, 'annotations')
    list_dir = osp.join(root, 'imageLists')
    _check_dir(img_dir, 'COCO-Stuff image folder')
    _check_dir(ann_dir, 'COCO-Stuff annotation folder')
    _check_dir(list_dir, 'COCO-Stuff image lists folder')
    splits: Dict[str, List[str]] = {}
    for split, list_name in SPLITS:
        names = read_list(osp.join(list_dir, list_name))
        if not names:
            raise ValueError(f'{osp.join(list_dir, list_name)} lists no '
                             'image.')
        unique = list(dict.fromkeys(names))
        if len(unique) != len(names):
            warnings.warn(f'{list_name} lists {len(names) - len(unique)} '
                          'name(s) twice; each is converted once.')
        splits[split] = unique
    overlap = sorted(set(splits['train']) & set(splits['val']))
    if overlap:
        raise ValueError(
            f'{len(overlap)} image(s) are in both imageLists/train.txt and '
            f'test.txt, e.g. {overlap[:5]}: the test images must not be '
            'trained on.')
    names = splits['train'] + splits['val']
    # Check every input before the long work starts.
    for folder, ext, what in ((ann_dir, '.mat', 'annotation'),
                              (img_dir, '.jpg', 'image')):
        missing = [
            n for n in names if not osp.isfile(osp.join(folder, n + ext))
        ]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} listed image(s) have no {what} in '
                f'{folder}, e.g. {osp.join(folder, missing[0] + ext)}' +
                (f' and {missing[1:5]}' if len(missing) > 1 else '') +
                f' ({LAYOUT})')

    out_dir = args.out_dir or osp.join(
        osp.dirname(osp.abspath(root)), 'cocostuff10k_voc20')
    split_dir = osp.join(out_dir, 'ImageSets', 'Segmentation')
    for folder in (osp.join(out_dir, 'JPEGImages'),
                   osp.join(out_dir, 'SegmentationClass'), split_dir):
        mkdir_or_exist(folder)
    print(f'Writing {len(names)} masks and images to {out_dir}')
    func = partial(
        convert_one,
        img_dir=img_dir,
        ann_dir=ann_dir,
        out_dir=out_dir,
        copy=args.copy_images)
    if args.nproc > 1:
        results = track_parallel_progress(func, names, nproc=args.nproc)
    else:
        results = track_progress(func, names)
    labels = dict(results)

    for split, split_names in splits.items():
        files = ('val.txt', 'test.txt') if split == 'val' else ('train.txt', )
        for file_name in files:
            with open(osp.join(split_dir, file_name), 'w') as f:
                f.writelines(name + '\n' for name in split_names)
    with open(osp.join(out_dir, 'classes.txt'), 'w') as f:
        f.writelines(name + '\n' for name in VOC_CLASSES)
    labels_path = osp.join(out_dir, 'cls_labels.json')
    save_cls_labels(labels_path, labels)

    print(f'Lists in {split_dir}:')
    for split, split_names in splits.items():
        empty = [n for n in split_names if not labels[n]]
        shown = 'val.txt = test.txt' if split == 'val' else 'train.txt'
        print(f'  {shown}: {len(split_names)} images, '
              f'{len(split_names) - len(empty)} with a VOC class, '
              f'{len(empty)} without (background and unlabeled only)')
        if len(split_names) != EXPECTED_LEN[split]:
            warnings.warn(f'{split} has {len(split_names)} images, not the '
                          f'{EXPECTED_LEN[split]} of COCO-Stuff 10K; check '
                          'the inputs unless this is intended.')
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    for name in splits['train']:
        counts[labels[name]] += 1
    print('train images per class: ' +
          ', '.join(f'{VOC_CLASSES[i]} {counts[i]}'
                    for i in range(1, NUM_CLASSES)))
    print(f'Wrote image-level labels of {len(labels)} images to '
          f'{labels_path} (images without a VOC class have an empty list; '
          "the datasets drop them with empty_label_policy='skip')")
    print('Done!')
    return labels


if __name__ == '__main__':
    main()
