# Copyright (c) OpenMMLab. All rights reserved.
"""Convert MS COCO 2014 instance annotations to a VOC-layout semantic
segmentation dataset with image-level labels.

Usage::

    python tools/dataset_converters/coco14.py COCO_ROOT [-o OUT_DIR] \
        [--nproc N] [--link-images | --copy-images]

``COCO_ROOT`` holds ``train2014/``, ``val2014/`` and
``annotations/instances_{train,val}2014.json``. Written at ``OUT_DIR``
(default ``COCO_ROOT/voc_layout``)::

    JPEGImages/<name>.jpg              symlinks (default) or copies
    SegmentationClass/<name>.png       palette PNG of class ids
    ImageSets/Segmentation/train.txt   82,081 names on the real data
    ImageSets/Segmentation/val.txt     40,137 names on the real data
    classes.txt                        81 names, background first
    cls_labels.json                    foreground class ids per image

Only the images with at least one non-crowd object are kept. Mask rules:

* class id = 1 + index of the COCO category id in ``COCO14_CATEGORY_IDS``
  (1 person, ..., 80 toothbrush); background 0.
* Overlaps: the non-crowd instances are painted in descending order of
  their rasterised pixel count (ties: ascending annotation id), so where
  instances overlap the smaller one wins and small objects stay visible.
* Crowd regions (``iscrowd=1``) are painted last, as 255 (ignored), only on
  pixels that no non-crowd instance covers.

``cls_labels.json`` is derived from the written masks
(``labels_from_mask(mask, 81)``), so a class whose instances are entirely
covered by smaller ones is not listed.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import shutil
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
from mmseg_wsss.datasets.metainfo import (  # noqa: E402
    COCO14_CATEGORY_IDS, COCO14_CLASSES)

SPLITS = ('train', 'val')
EXPECTED_LEN = dict(train=82081, val=40137)
NUM_CLASSES = len(COCO14_CLASSES)
CAT_TO_CLASS = {cat: i + 1 for i, cat in enumerate(COCO14_CATEGORY_IDS)}


def _mask_api():
    """Import ``pycocotools.mask`` with an actionable error."""
    try:
        from pycocotools import mask as mask_utils
    except ImportError as e:
        raise ImportError(
            'tools/dataset_converters/coco14.py needs pycocotools to decode '
            'COCO polygons and RLE: pip install pycocotools') from e
    return mask_utils


def decode_segmentation(segm, height: int, width: int) -> np.ndarray:
    """Rasterise a COCO ``segmentation`` (polygons, RLE or compressed RLE).

    Args:
        segm (list | dict): The annotation's ``segmentation`` field.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: (H, W) bool mask.
    """
    mask_utils = _mask_api()
    if isinstance(segm, list):  # polygons
        # A polygon needs >= 3 points; pycocotools would read a list whose
        # first entry has 4 numbers as boxes, so drop degenerate ones.
        polys = [p for p in segm if len(p) >= 6 and len(p) % 2 == 0]
        if not polys:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(segm, dict) and isinstance(segm.get('counts'), list):
        rle = mask_utils.frPyObjects(segm, height, width)  # uncompressed RLE
    elif isinstance(segm, dict) and 'counts' in segm:
        rle = segm  # compressed RLE
    else:
        raise ValueError(f'unsupported segmentation {type(segm).__name__}')
    mask = mask_utils.decode(rle)
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    if mask.shape != (height, width):
        raise ValueError(f'segmentation size {mask.shape} != image size '
                         f'{(height, width)}')
    return mask.astype(bool)


def rasterize(anns: Sequence[dict], height: int, width: int) -> np.ndarray:
    """Paint the instances of one image into a class map.

    Non-crowd instances are painted in descending pixel-count order (ties:
    ascending annotation id), so a smaller instance overwrites a larger one
    where they overlap. Crowd regions are painted last as 255 on the pixels
    that are still background.

    Args:
        anns (Sequence[dict]): COCO annotations (``segmentation``,
            ``category_id``, ``iscrowd``, ``id``) of the image.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: (H, W) uint8 class map (0 background, 1..80 objects, 255
        crowd).
    """
    seg = np.zeros((height, width), dtype=np.uint8)
    instances, crowd = [], np.zeros((height, width), dtype=bool)
    for ann in anns:
        cat = ann['category_id']
        if cat not in CAT_TO_CLASS:
            raise ValueError(
                f'annotation {ann.get("id")} has category id {cat}, not one '
                'of the 80 COCO 2014 categories')
        try:
            mask = decode_segmentation(ann['segmentation'], height, width)
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f'annotation {ann.get("id")}: cannot decode its '
                             f'segmentation: {e}') from e
        if ann.get('iscrowd', 0):
            crowd |= mask
        else:
            instances.append(
                (-int(mask.sum()), ann.get('id', 0), CAT_TO_CLASS[cat], mask))
    instances.sort(key=lambda x: (x[0], x[1]))
    for _, _, class_id, mask in instances:
        seg[mask] = class_id
    seg[crowd & (seg == 0)] = IGNORE_INDEX
    return seg


def save_index_png(mask: np.ndarray,
                   path: str,
                   num_classes: int = NUM_CLASSES) -> None:
    """Save a class map as a palette PNG (``default_palette(num_classes)``
    padded to 256 entries with the VOC colour map)."""
    palette = default_palette(num_classes)
    palette += default_palette(256)[num_classes:]
    img = Image.fromarray(mask.astype(np.uint8), mode='P')
    img.putpalette([c for rgb in palette for c in rgb])
    img.save(path, format='PNG')


def place_image(src: str, dst: str, copy: bool = False) -> None:
    """Symlink (absolute target) or copy ``src`` to ``dst``, replacing
    whatever ``dst`` was."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'COCO image not found: {src}')
    if osp.lexists(dst):
        os.remove(dst)
    if copy:
        shutil.copyfile(src, dst)
        return
    try:
        os.symlink(osp.abspath(src), dst)
    except OSError as e:
        raise OSError(f'Cannot symlink {dst} -> {src} ({e}); use '
                      '--copy-images on file systems without symlinks.') \
            from e


def convert_image(task: Tuple[dict, List[dict]],
                  img_dir: str,
                  out_dir: str,
                  copy: bool = False) -> Tuple[str, List[int]]:
    """Write the mask and the image of one COCO image.

    Args:
        task (tuple[dict, list[dict]]): The ``images`` entry and its
            annotations.
        img_dir (str): Source image folder (``train2014`` or ``val2014``).
        out_dir (str): Output root (VOC layout).
        copy (bool): Copy the image instead of symlinking it.

    Returns:
        tuple[str, list[int]]: Image name and its foreground class ids.
    """
    info, anns = task
    file_name = info['file_name']
    name = osp.splitext(file_name)[0]
    try:
        seg = rasterize(anns, int(info['height']), int(info['width']))
    except ValueError as e:
        raise ValueError(f'image {file_name}: {e}') from e
    save_index_png(seg, osp.join(out_dir, 'SegmentationClass', name + '.png'))
    place_image(
        osp.join(img_dir, file_name),
        osp.join(out_dir, 'JPEGImages', file_name),
        copy=copy)
    return name, labels_from_mask(seg, NUM_CLASSES, IGNORE_INDEX)


def load_split(ann_file: str) -> List[Tuple[dict, List[dict]]]:
    """Read an instances JSON and group the annotations by image.

    Args:
        ann_file (str): ``instances_{train,val}2014.json``.

    Returns:
        list[tuple[dict, list[dict]]]: ``(image info, annotations)`` of the
        images with at least one non-crowd annotation, sorted by file name.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'COCO annotation file not found: {ann_file}')
    print(f'Loading {ann_file}')
    with open(ann_file) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{ann_file} is not valid JSON: {e}') from e
    for key in ('images', 'annotations'):
        if key not in data:
            raise ValueError(f'{ann_file} has no "{key}" list; expected a '
                             'COCO instances file.')
    for cat in data.get('categories', []):
        cid, cname = cat.get('id'), cat.get('name')
        if cid in CAT_TO_CLASS and COCO14_CLASSES[CAT_TO_CLASS[cid]] != cname:
            warnings.warn(f'{ann_file}: category {cid} is "{cname}", '
                          f'COCO14_CLASSES calls it '
                          f'"{COCO14_CLASSES[CAT_TO_CLASS[cid]]}"')
    images = {img['id']: img for img in data['images']}
    anns_by_img: Dict[int, List[dict]] = {}
    orphans = 0
    for ann in data['annotations']:
        if ann['image_id'] not in images:
            orphans += 1
            continue
        anns_by_img.setdefault(ann['image_id'], []).append({
            k: ann[k]
            for k in ('id', 'category_id', 'iscrowd', 'segmentation')
            if k in ann
        })
    if orphans:
        warnings.warn(f'{ann_file}: {orphans} annotation(s) refer to no '
                      'listed image; ignored.')
    tasks = [(images[img_id], anns) for img_id, anns in anns_by_img.items()
             if any(not a.get('iscrowd', 0) for a in anns)]
    tasks.sort(key=lambda t: t[0]['file_name'])
    print(f'{ann_file}: {len(tasks)} of {len(images)} images have a '
          'non-crowd object')
    return tasks


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert MS COCO 2014 instances to a VOC-layout semantic '
        'segmentation dataset (JPEGImages, SegmentationClass, '
        'ImageSets/Segmentation/{train,val}.txt, classes.txt, '
        'cls_labels.json)')
    parser.add_argument(
        'coco_root',
        help='folder holding train2014/, val2014/ and annotations/')
    parser.add_argument(
        '-o',
        '--out_dir',
        '--out-dir',
        dest='out_dir',
        help='output root (default: COCO_ROOT/voc_layout)')
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


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, List[int]]:
    """Run the conversion; returns the labels written to the labels file."""
    args = parse_args(argv)
    _mask_api()  # fail early when pycocotools is missing
    root = args.coco_root
    if not osp.isdir(root):
        raise FileNotFoundError(f'COCO root not found: {root}')
    ann_files = {
        s: osp.join(root, 'annotations', f'instances_{s}2014.json')
        for s in SPLITS
    }
    img_dirs = {s: osp.join(root, f'{s}2014') for s in SPLITS}
    for s in SPLITS:  # check every input before the long work starts
        if not osp.isfile(ann_files[s]):
            raise FileNotFoundError(
                f'COCO annotation file not found: {ann_files[s]}')
        if not osp.isdir(img_dirs[s]):
            raise FileNotFoundError(
                f'COCO image folder not found: {img_dirs[s]}')

    out_dir = args.out_dir or osp.join(root, 'voc_layout')
    split_dir = osp.join(out_dir, 'ImageSets', 'Segmentation')
    for folder in (osp.join(out_dir, 'JPEGImages'),
                   osp.join(out_dir, 'SegmentationClass'), split_dir):
        mkdir_or_exist(folder)
    labels: Dict[str, List[int]] = {}
    counts = {}
    for split in SPLITS:
        tasks = load_split(ann_files[split])
        print(f'Writing {len(tasks)} {split} masks and images to {out_dir}')
        func = partial(
            convert_image,
            img_dir=img_dirs[split],
            out_dir=out_dir,
            copy=args.copy_images)
        if args.nproc > 1:
            results = track_parallel_progress(func, tasks, nproc=args.nproc)
        else:
            results = track_progress(func, tasks)
        del tasks
        names = [name for name, _ in results]
        labels.update(results)
        with open(osp.join(split_dir, f'{split}.txt'), 'w') as f:
            f.writelines(name + '\n' for name in names)
        counts[split] = len(names)
        if len(names) != EXPECTED_LEN[split]:
            warnings.warn(f'{split} has {len(names)} images, not the '
                          f'{EXPECTED_LEN[split]} of the full COCO 2014 '
                          'data; check the inputs unless this is intended.')
    print('Images with objects: ' + ', '.join(f'{s} {n}'
                                              for s, n in counts.items()) +
          f' (lists in {split_dir})')
    empty = [n for n, ids in labels.items() if not ids]
    if empty:
        warnings.warn(
            f'{len(empty)} listed image(s) have no foreground pixel in their '
            f'mask (degenerate or fully covered annotations), e.g. '
            f'{empty[:5]}; their labels are empty.')

    with open(osp.join(out_dir, 'classes.txt'), 'w') as f:
        f.writelines(name + '\n' for name in COCO14_CLASSES)
    labels_path = osp.join(out_dir, 'cls_labels.json')
    save_cls_labels(labels_path, labels)
    print(f'Wrote image-level labels of {len(labels)} images to '
          f'{labels_path}')
    print('Done!')
    return labels


if __name__ == '__main__':
    main()
