# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of tools/dataset_converters/{voc_aug,coco14}.py on tiny fake data."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from mmseg_wsss.datasets.cls_labels import default_palette, load_cls_labels
from mmseg_wsss.datasets.metainfo import COCO14_CLASSES

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER_DIR = osp.join(REPO_ROOT, 'tools', 'dataset_converters')
H, W = 20, 30
# pycocotools' Cython decode trips a numpy 2 deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings(
    'ignore:__array__ implementation:DeprecationWarning')


def _load_script(name):
    path = osp.join(CONVERTER_DIR, name + '.py')
    spec = importlib.util.spec_from_file_location(f'_wsss_conv_{name}', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so worker processes can unpickle
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def voc_aug():
    return _load_script('voc_aug')


@pytest.fixture(scope='module')
def coco14():
    return _load_script('coco14')


def _read_png(path):
    with Image.open(path) as img:
        assert img.mode == 'P'
        return np.array(img)


def _save_palette_png(mask, path):
    img = Image.fromarray(mask.astype(np.uint8), mode='P')
    img.putpalette([c for rgb in default_palette(256) for c in rgb])
    img.save(path)


def _save_jpg(path):
    Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(path)


def _block(value, y0, y1, x0, x1, boundary=False):
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = value
    if boundary:  # VOC-style 255 outline
        mask[y0, x0:x1] = 255
        mask[y1 - 1, x0:x1] = 255
    return mask


# ---------------------------------------------------------------- VOC + SBD
VOC_TRAIN = ['2007_000001', '2007_000002']
VOC_VAL = ['2007_000003', '2008_000010']
SBD_TRAIN = ['2007_000001', '2008_000010', '2008_000011']  # 10 is VOC val
SBD_VAL = ['2008_000012']
# official VOC masks (with 255 boundaries)
VOC_MASKS = {
    '2007_000001': _block(15, 2, 10, 2, 10, boundary=True),  # person
    '2007_000002': _block(1, 5, 15, 5, 25, boundary=True),  # aeroplane
    '2007_000003': _block(12, 0, 8, 0, 8, boundary=True),  # dog
    '2008_000010': _block(7, 3, 9, 3, 9, boundary=True),  # car
}
# SBD masks (no boundary); 2007_000001 and 2008_000010 differ from VOC's
SBD_MASKS = {
    '2007_000001': _block(19, 0, 20, 0, 30),  # train: must NOT be used
    '2008_000010': _block(9, 0, 20, 0, 30),  # chair: must NOT be used
    '2008_000011': _block(3, 4, 12, 4, 12) + _block(20, 14, 18, 20, 28),
    '2008_000012': _block(17, 1, 19, 1, 29),  # sheep
}


def _write_list(path, names):
    with open(path, 'w') as f:
        f.writelines(n + '\n' for n in names)


@pytest.fixture
def voc_tree(tmp_path):
    devkit = tmp_path / 'VOCdevkit'
    voc = devkit / 'VOC2012'
    split_dir = voc / 'ImageSets' / 'Segmentation'
    for d in (voc / 'JPEGImages', voc / 'SegmentationClass', split_dir):
        d.mkdir(parents=True)
    sbd = tmp_path / 'benchmark_RELEASE'
    (sbd / 'dataset' / 'cls').mkdir(parents=True)
    _write_list(split_dir / 'train.txt', VOC_TRAIN)
    _write_list(split_dir / 'val.txt', VOC_VAL)
    _write_list(sbd / 'dataset' / 'train.txt', SBD_TRAIN)
    _write_list(sbd / 'dataset' / 'val.txt', SBD_VAL)
    for name, mask in VOC_MASKS.items():
        _save_palette_png(mask, voc / 'SegmentationClass' / (name + '.png'))
    for i, (name, mask) in enumerate(SBD_MASKS.items()):
        path = str(sbd / 'dataset' / 'cls' / (name + '.mat'))
        if i % 2:  # a MATLAB-like 1x1 struct array (record dtype)
            gt = np.zeros((1, 1),
                          dtype=[('Segmentation', 'O'), ('Boundaries', 'O'),
                                 ('CategoriesPresent', 'O')])
            gt[0, 0] = (mask, np.zeros(
                (1, 1), 'O'), np.unique(mask[mask > 0]).astype(np.uint8))
        else:  # a dict, which savemat writes as a struct
            gt = {'Segmentation': mask, 'Boundaries': np.zeros((2, 2))}
        savemat(path, {'GTcls': gt})
    for name in set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL):
        _save_jpg(voc / 'JPEGImages' / (name + '.jpg'))
    return devkit, sbd


def test_build_lists(voc_aug):
    train_aug, aug = voc_aug.build_lists(SBD_TRAIN, SBD_VAL, VOC_TRAIN,
                                         VOC_VAL)
    assert train_aug == [
        '2007_000001', '2007_000002', '2008_000011', '2008_000012'
    ]
    assert aug == ['2008_000011', '2008_000012']


def test_load_sbd_mask(voc_aug, tmp_path):
    mask = SBD_MASKS['2008_000011']
    # every way savemat writes a struct loads back to the same uint8 map
    variants = {
        'dict': {
            'Segmentation': mask
        },
        'record': np.array([(mask, )], dtype=[('Segmentation', 'O')]),
        'double': {
            'Segmentation': mask.astype(np.float64)
        },
    }
    for key, gt in variants.items():
        path = str(tmp_path / f'{key}.mat')
        savemat(path, {'GTcls': gt})
        out = voc_aug.load_sbd_mask(path)
        assert out.dtype == np.uint8 and out.shape == (H, W), key
        np.testing.assert_array_equal(out, mask)

    bad = str(tmp_path / 'no_gtcls.mat')
    savemat(bad, {'GTinst': {'Segmentation': mask}})
    with pytest.raises(ValueError, match='no_gtcls.mat.*GTcls'):
        voc_aug.load_sbd_mask(bad)
    bad = str(tmp_path / 'no_field.mat')
    savemat(bad, {'GTcls': {'Boundaries': mask}})
    with pytest.raises(ValueError, match='no_field.mat.*Segmentation'):
        voc_aug.load_sbd_mask(bad)
    with pytest.raises(FileNotFoundError, match='missing.mat'):
        voc_aug.load_sbd_mask(str(tmp_path / 'missing.mat'))


@pytest.mark.parametrize('nproc', [1, 2])
def test_voc_aug(voc_aug, voc_tree, nproc):
    devkit, sbd = voc_tree
    voc = devkit / 'VOC2012'
    with pytest.warns(UserWarning, match='train_aug has 4 images'):
        labels = voc_aug.main([str(devkit), str(sbd), '--nproc', str(nproc)])

    split_dir = voc / 'ImageSets' / 'Segmentation'
    train_aug = (split_dir / 'train_aug.txt').read_text().split()
    aug = (split_dir / 'aug.txt').read_text().split()
    # 2008_000010 is in SBD train but also VOC val: not in train_aug
    assert train_aug == [
        '2007_000001', '2007_000002', '2008_000011', '2008_000012'
    ]
    assert aug == ['2008_000011', '2008_000012']
    # the official lists are left as they were
    assert (split_dir / 'train.txt').read_text().split() == VOC_TRAIN

    out = voc / 'SegmentationClassAug'
    names = sorted(set(train_aug) | set(VOC_VAL))
    assert sorted(os.listdir(out)) == [n + '.png' for n in names]
    for name in names:
        mask = _read_png(out / (name + '.png'))
        # VOC masks are preferred over SBD ones (boundaries kept)
        expected = VOC_MASKS.get(name, SBD_MASKS.get(name))
        np.testing.assert_array_equal(mask, expected, err_msg=name)
    with Image.open(out / '2008_000011.png') as img:
        pal = np.array(img.getpalette()[:21 * 3]).reshape(21, 3)
    np.testing.assert_array_equal(pal, default_palette(21))

    expected_labels = {
        '2007_000001': [15],
        '2007_000002': [1],
        '2007_000003': [12],
        '2008_000010': [7],
        '2008_000011': [3, 20],
        '2008_000012': [17],
    }
    assert labels == expected_labels
    assert load_cls_labels(str(voc / 'cls_labels.json')) == expected_labels


def test_voc_aug_out_dir_and_script(voc_tree, tmp_path):
    """The script runs as a command with ``-o``."""
    devkit, sbd = voc_tree
    out = tmp_path / 'masks'
    proc = subprocess.run([
        sys.executable,
        osp.join(CONVERTER_DIR, 'voc_aug.py'),
        str(devkit),
        str(sbd), '-o',
        str(out)
    ],
                          capture_output=True,
                          text=True,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert 'train_aug: 4 images' in proc.stdout
    assert len(os.listdir(out)) == 6
    assert not (devkit / 'VOC2012' / 'SegmentationClassAug').exists()
    assert (devkit / 'VOC2012' / 'cls_labels.json').is_file()


def test_voc_aug_missing_inputs(voc_aug, voc_tree):
    devkit, sbd = voc_tree
    with pytest.raises(FileNotFoundError, match='VOCdevkit.*not VOC2012'):
        voc_aug.main([str(devkit / 'VOC2012'), str(sbd)])
    os.remove(sbd / 'dataset' / 'cls' / '2008_000012.mat')
    with pytest.raises(FileNotFoundError, match='2008_000012.mat'):
        voc_aug.main([str(devkit), str(sbd)])
    os.remove(sbd / 'dataset' / 'val.txt')
    with pytest.raises(FileNotFoundError, match=r'dataset[/\\]val.txt'):
        voc_aug.main([str(devkit), str(sbd)])
    with pytest.raises(FileNotFoundError, match='dataset'):
        voc_aug.main([str(devkit), str(devkit)])


def test_voc_aug_bad_class_id(voc_aug, voc_tree):
    devkit, sbd = voc_tree
    path = sbd / 'dataset' / 'cls' / '2008_000012.mat'
    savemat(str(path), {'GTcls': {'Segmentation': _block(21, 0, 5, 0, 5)}})
    with pytest.raises(ValueError, match='2008_000012.mat.*21'):
        voc_aug.main([str(devkit), str(sbd)])


# ---------------------------------------------------------------- COCO 2014
def _rect(x0, y0, x1, y1):
    return [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]


def _img(img_id, split):
    return dict(
        id=img_id,
        file_name=f'COCO_{split}2014_{img_id:012d}.jpg',
        height=H,
        width=W)


def _uncompressed_rle_counts(mask):
    """COCO uncompressed RLE counts: column-major runs, starting with 0s."""
    flat = mask.flatten(order='F')
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat[0] else counts


def _coco_json(split):
    from pycocotools import mask as mask_utils
    crowd = np.zeros((H, W), np.uint8, order='F')
    crowd[:, 20:] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    rle['counts'] = rle['counts'].decode('ascii')
    cats = [
        dict(id=1, name='person'),
        dict(id=3, name='car'),
        dict(id=90, name='toothbrush')
    ]
    if split == 'train':
        images = [_img(9, split), _img(25, split), _img(30, split)]
        anns = [
            # small toothbrush listed first (lower id) inside a large person:
            # drawn after the person because it is smaller
            dict(
                id=1,
                image_id=9,
                category_id=90,
                iscrowd=0,
                segmentation=[_rect(8, 6, 14, 12)]),
            dict(
                id=2,
                image_id=9,
                category_id=1,
                iscrowd=0,
                segmentation=[_rect(2, 2, 26, 17)]),
            # crowd over the right part: only where no instance is
            dict(id=3, image_id=9, category_id=1, iscrowd=1, segmentation=rle),
            # image 30 has only a crowd region: not listed; 25 has nothing
            dict(
                id=4, image_id=30, category_id=1, iscrowd=1, segmentation=rle),
        ]
    else:
        images = [_img(42, split)]
        crowd_top = np.zeros((H, W), np.uint8)
        crowd_top[:5, :] = 1
        counts = _uncompressed_rle_counts(crowd_top)
        anns = [
            dict(
                id=10,
                image_id=42,
                category_id=3,
                iscrowd=0,
                segmentation=[_rect(3, 8, 20, 18), [1.0, 1.0, 2.0, 2.0]]),
            dict(
                id=11,
                image_id=42,
                category_id=1,
                iscrowd=1,
                segmentation=dict(counts=counts, size=[H, W])),
        ]
    return dict(images=images, annotations=anns, categories=cats)


@pytest.fixture
def coco_root(tmp_path):
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        (root / f'{split}2014').mkdir()
        data = _coco_json(split)
        with open(root / 'annotations' / f'instances_{split}2014.json',
                  'w') as f:
            json.dump(data, f)
        for img in data['images']:
            _save_jpg(root / f'{split}2014' / img['file_name'])
    return root


def test_coco_class_mapping(coco14):
    assert coco14.CAT_TO_CLASS[1] == 1
    assert coco14.CAT_TO_CLASS[90] == 80
    assert COCO14_CLASSES[coco14.CAT_TO_CLASS[90]] == 'toothbrush'
    assert COCO14_CLASSES[coco14.CAT_TO_CLASS[3]] == 'car'
    assert len(coco14.CAT_TO_CLASS) == 80


@pytest.mark.parametrize('copy', [False, True])
def test_coco14(coco14, coco_root, copy):
    argv = [str(coco_root)] + (['--copy-images'] if copy else [])
    with pytest.warns(UserWarning, match='(train|val) has 1 images'):
        labels = coco14.main(argv)
    out = coco_root / 'voc_layout'
    split_dir = out / 'ImageSets' / 'Segmentation'
    # the image without annotations and the crowd-only image are left out
    assert (split_dir / 'train.txt').read_text().split() == [
        'COCO_train2014_000000000009'
    ]
    assert (split_dir /
            'val.txt').read_text().split() == ['COCO_val2014_000000000042']
    assert (out /
            'classes.txt').read_text().splitlines() == list(COCO14_CLASSES)
    assert sorted(os.listdir(out / 'SegmentationClass')) == [
        'COCO_train2014_000000000009.png', 'COCO_val2014_000000000042.png'
    ]
    for split, name in (('train', 'COCO_train2014_000000000009'),
                        ('val', 'COCO_val2014_000000000042')):
        dst = out / 'JPEGImages' / (name + '.jpg')
        assert dst.is_file()
        assert dst.is_symlink() != copy
        if not copy:
            assert os.readlink(dst) == str(coco_root / f'{split}2014' /
                                           (name + '.jpg'))

    seg = _read_png(out / 'SegmentationClass' /
                    'COCO_train2014_000000000009.png')
    assert seg.shape == (H, W)
    assert seg[9, 11] == 80  # toothbrush wins over the larger person
    assert seg[4, 4] == 1 and seg[15, 22] == 1  # person, also under crowd
    assert seg[10, 28] == 255 and seg[19, 25] == 255  # crowd on background
    assert seg[19, 5] == 0 and seg[0, 0] == 0
    assert set(np.unique(seg)) == {0, 1, 80, 255}
    with Image.open(out / 'SegmentationClass' /
                    'COCO_train2014_000000000009.png') as img:
        pal = np.array(img.getpalette()[:81 * 3]).reshape(81, 3)
    np.testing.assert_array_equal(pal, default_palette(81))

    seg = _read_png(out / 'SegmentationClass' /
                    'COCO_val2014_000000000042.png')
    assert seg[12, 10] == 3  # car
    assert seg[2, 10] == 255 and seg[19, 29] == 0  # uncompressed RLE crowd
    assert 3 in seg[8:18, 3:20] and set(np.unique(seg)) == {0, 3, 255}

    expected = {
        'COCO_train2014_000000000009': [1, 80],
        'COCO_val2014_000000000042': [3],
    }
    assert labels == expected
    assert load_cls_labels(str(out / 'cls_labels.json')) == expected


def test_coco14_rerun_nproc_and_out_dir(coco14, coco_root, tmp_path):
    out = tmp_path / 'layout'
    for _ in range(2):  # re-running replaces links and masks
        with pytest.warns(UserWarning):
            coco14.main([str(coco_root), '-o', str(out), '--nproc', '2'])
    assert len(os.listdir(out / 'JPEGImages')) == 2
    assert not (coco_root / 'voc_layout').exists()


@pytest.mark.filterwarnings('ignore:train has 1 images:UserWarning')
def test_coco14_errors(coco14, coco_root):
    with pytest.raises(SystemExit):  # mutually exclusive flags
        coco14.parse_args([str(coco_root), '--copy-images', '--link-images'])
    os.remove(coco_root / 'val2014' / 'COCO_val2014_000000000042.jpg')
    with pytest.raises(FileNotFoundError, match='COCO_val2014_000000000042'):
        coco14.main([str(coco_root)])
    os.remove(coco_root / 'annotations' / 'instances_val2014.json')
    with pytest.raises(FileNotFoundError, match='instances_val2014.json'):
        coco14.main([str(coco_root)])

    data = _coco_json('train')
    data['annotations'][0]['category_id'] = 12  # not a COCO 2014 category
    with pytest.raises(ValueError, match='category id 12'):
        coco14.rasterize(data['annotations'][:2], H, W)
