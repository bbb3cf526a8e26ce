# Copyright (c) OpenMMLab. All rights reserved.
"""WSSS datasets on tiny VOC-layout folders built in tmp_path."""
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import mmseg_wsss  # noqa: F401  (registers modules, applies compat)
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules
from mmseg_wsss.datasets import (WSSSCOCODataset, WSSSCustomDataset,
                                 WSSSVOCDataset, default_palette)
from mmseg_wsss.registry import DATASETS

register_all_modules()

CLASSES = ('background', 'cat', 'dog', 'boat')
# name -> foreground ids painted into its mask (255 band as well)
MASKS = {
    'img_a': [1],
    'img_b': [2, 3],
    'img_c': [1, 3],
    'img_d': [2],
}
SPLITS = {'train': ['img_a', 'img_b', 'img_c'], 'val': ['img_d']}


def _mask(ids, size=16):
    m = np.zeros((size, size), dtype=np.uint8)
    for k, i in enumerate(ids):
        m[2 + 5 * k:6 + 5 * k, 3:12] = i
    m[-1, :] = 255  # ignore band
    return m


def _write_mask(path, mask):
    im = Image.fromarray(mask, mode='P')
    im.putpalette(np.asarray(default_palette(256), np.uint8).ravel().tolist())
    im.save(path)


def make_voc(root, masks=MASKS, splits=SPLITS, classes=CLASSES,
             labels='json'):
    """Write a VOC-layout folder; labels 'json', 'npy' or None."""
    rng = np.random.RandomState(0)
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    for name, ids in masks.items():
        img = rng.randint(0, 256, (16, 16, 3), dtype=np.uint8)
        cv2.imwrite(osp.join(root, 'JPEGImages', name + '.jpg'), img)
        _write_mask(osp.join(root, 'SegmentationClass', name + '.png'),
                    _mask(ids))
    for split, names in splits.items():
        with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')
    if classes is not None:
        with open(osp.join(root, 'classes.txt'), 'w') as f:
            f.write('\n'.join(classes) + '\n')
    if labels == 'json':
        with open(osp.join(root, 'cls_labels.json'), 'w') as f:
            json.dump({k: v for k, v in masks.items()}, f)
    elif labels == 'npy':
        onehot = {}
        for k, v in masks.items():
            vec = np.zeros(len(classes) - 1, dtype=np.uint8)
            vec[np.asarray(v) - 1] = 1
            onehot[k] = vec
        np.save(osp.join(root, 'cls_labels_onehot.npy'), onehot)
    return str(root)


def build(root, split='train', cls=WSSSCustomDataset, pipeline=(), **kw):
    cfg = dict(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        pipeline=list(pipeline))
    cfg.update(kw)
    return cls(**cfg)


def _write_labels(root, labels):
    with open(osp.join(root, 'cls_labels.json'), 'w') as f:
        json.dump(labels, f)


# ------------------------------------------------------------ basic load --


def test_custom_dataset_multi_hot(tmp_path):
    root = make_voc(tmp_path)
    ds = build(root)
    assert ds.metainfo['classes'] == CLASSES
    assert ds.num_classes == 4
    assert len(ds) == 3
    info = {osp.basename(d['img_path']): d for d in
            (ds.get_data_info(i) for i in range(len(ds)))}
    np.testing.assert_array_equal(info['img_a.jpg']['gt_cls_label'],
                                  [1., 0., 0.])
    np.testing.assert_array_equal(info['img_b.jpg']['gt_cls_label'],
                                  [0., 1., 1.])
    np.testing.assert_array_equal(info['img_c.jpg']['gt_cls_label'],
                                  [1., 0., 1.])
    assert info['img_a.jpg']['gt_cls_label'].dtype == np.float32
    # evaluation datasets keep the mask path
    assert info['img_a.jpg']['seg_map_path'].endswith(
        osp.join('SegmentationClass', 'img_a.png'))


def test_training_dataset_has_no_seg_map(tmp_path):
    root = make_voc(tmp_path)
    ds = build(root, with_seg_map=False)
    for i in range(len(ds)):
        assert 'seg_map_path' not in ds.get_data_info(i)
        assert ds.get_data_info(i)['gt_cls_label'].shape == (3, )


def test_build_through_registry(tmp_path):
    root = make_voc(tmp_path)
    ds = DATASETS.build(
        dict(
            type='WSSSCustomDataset',
            data_root=root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/val.txt',
            pipeline=[]))
    assert isinstance(ds, WSSSCustomDataset) and len(ds) == 1


# ---------------------------------------------------------- label errors --


def test_labels_not_covering_split(tmp_path):
    root = make_voc(tmp_path)
    _write_labels(root, {'img_a': [1], 'img_c': [3]})
    with pytest.raises(ValueError) as info:
        build(root)
    msg = str(info.value)
    assert 'cls_labels.json' in msg and 'img_b' in msg


@pytest.mark.parametrize('bad', [[4], [1, 7], [0, 1], [-1]])
def test_class_id_outside_metainfo(tmp_path, bad):
    root = make_voc(tmp_path)
    _write_labels(root, {'img_a': [1], 'img_b': bad, 'img_c': [3]})
    with pytest.raises(ValueError, match='img_b'):
        build(root)


def test_empty_labels_error_and_skip(tmp_path):
    root = make_voc(tmp_path)
    _write_labels(root, {'img_a': [1], 'img_b': [], 'img_c': [3]})
    with pytest.raises(ValueError, match='img_b'):
        build(root)
    ds = build(root, empty_label_policy='skip')
    assert len(ds) == 2
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(2)] == ['img_a.jpg', 'img_c.jpg']
    with pytest.raises(ValueError, match='empty_label_policy'):
        build(root, empty_label_policy='ignore')


def test_missing_image(tmp_path):
    root = make_voc(tmp_path)
    os.remove(osp.join(root, 'JPEGImages', 'img_b.jpg'))
    with pytest.raises(FileNotFoundError) as info:
        build(root)
    assert osp.join('JPEGImages', 'img_b.jpg') in str(info.value)


def test_missing_labels_file_without_derive(tmp_path):
    root = make_voc(tmp_path, labels=None)
    with pytest.raises(FileNotFoundError, match='cls_labels.json'):
        build(root, derive_cls_labels=False)


def test_unreadable_image_named_on_fetch(tmp_path):
    root = make_voc(tmp_path)
    bad = osp.join(root, 'JPEGImages', 'img_b.jpg')
    with open(bad, 'wb') as f:
        f.write(b'this is not a jpeg at all' * 4)
    ds = build(root, pipeline=[dict(type='LoadImageFromFile')])
    names = [osp.basename(ds.get_data_info(i)['img_path'])
             for i in range(len(ds))]
    idx = names.index('img_b.jpg')
    with pytest.raises((OSError, RuntimeError)) as info:
        ds[idx]
    assert bad in str(info.value)
    # the other samples load
    assert ds[names.index('img_a.jpg')]['img'].shape == (16, 16, 3)


# ------------------------------------------------------------ derivation --


def test_derive_labels_from_masks(tmp_path):
    root = make_voc(tmp_path, labels=None)
    ds = build(root, with_seg_map=False)  # derive_cls_labels defaults True
    path = osp.join(root, 'cls_labels.json')
    assert osp.isfile(path)
    with open(path) as f:
        saved = json.load(f)
    # every split list, not only the one being built
    assert saved == {k: sorted(v) for k, v in MASKS.items()}
    assert len(ds) == 3
    np.testing.assert_array_equal(ds.get_data_info(1)['gt_cls_label'],
                                  [0., 1., 1.])
    # A second build reads only the file: the masks are gone.
    shutil.rmtree(osp.join(root, 'SegmentationClass'))
    ds2 = build(root, with_seg_map=False)
    assert len(ds2) == 3
    ds3 = build(root, split='val', with_seg_map=False)
    np.testing.assert_array_equal(ds3.get_data_info(0)['gt_cls_label'],
                                  [0., 1., 0.])


def test_derive_labels_missing_mask(tmp_path):
    root = make_voc(tmp_path, labels=None)
    os.remove(osp.join(root, 'SegmentationClass', 'img_d.png'))
    with pytest.raises(FileNotFoundError, match='img_d'):
        build(root)
    assert not osp.exists(osp.join(root, 'cls_labels.json'))


def test_toco_onehot_npy(tmp_path):
    root = make_voc(tmp_path, labels='npy')
    ds = build(root, cls_label_file='cls_labels_onehot.npy',
               derive_cls_labels=False)
    assert len(ds) == 3
    np.testing.assert_array_equal(ds.get_data_info(2)['gt_cls_label'],
                                  [1., 0., 1.])
    assert not osp.exists(osp.join(root, 'cls_labels.json'))


# -------------------------------------------------------------- metainfo --


def test_voc_coco_metainfo(tmp_path):
    voc = WSSSVOCDataset.METAINFO
    coco = WSSSCOCODataset.METAINFO
    assert len(voc['classes']) == 21 and voc['classes'][0] == 'background'
    assert len(coco['classes']) == 81 and coco['classes'][0] == 'background'
    assert voc['classes'][15] == 'person' and coco['classes'][1] == 'person'
    assert len(voc['palette']) == 21 and len(coco['palette']) == 81
    assert voc['palette'][0] == [0, 0, 0] and voc['palette'][1] == [128, 0, 0]
    # A VOC dataset on a VOC-layout folder (ids within 1..20).
    root = make_voc(tmp_path, classes=None)
    ds = build(root, cls=WSSSVOCDataset)
    assert ds.num_classes == 21
    assert ds.get_data_info(0)['gt_cls_label'].shape == (20, )
    assert ds.get_data_info(0)['gt_cls_label'][0] == 1.


# -------------------------------------------------------------- pipeline --


def test_pipeline_packs_labels_and_box(tmp_path):
    root = make_voc(tmp_path)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomCropWithBox', crop_size=24),
        dict(type='PackWSSSInputs'),
    ]
    ds = build(root, pipeline=pipeline, with_seg_map=False)
    np.random.seed(0)
    batch = [ds[i] for i in range(2)]
    for i, item in enumerate(batch):
        sample = item['data_samples']
        assert isinstance(sample, SegDataSample)
        assert item['inputs'].shape == (3, 24, 24)
        torch.testing.assert_close(
            sample.gt_cls_label.data,
            torch.from_numpy(ds.get_data_info(i)['gt_cls_label']))
        box = sample.metainfo['img_box']
        h0, h1, w0, w1 = (int(v) for v in box)
        assert h1 - h0 == 16 and w1 - w0 == 16
        assert 'gt_sem_seg' not in sample
        assert 'seg_map_path' not in sample.metainfo
    pre = SegDataPreProcessor(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=(32, 32))
    out = pre(
        dict(
            inputs=[b['inputs'] for b in batch],
            data_samples=[b['data_samples'] for b in batch]),
        training=True)
    assert out['inputs'].shape == (2, 3, 32, 32)
    for i, sample in enumerate(out['data_samples']):
        torch.testing.assert_close(
            sample.gt_cls_label.data,
            torch.from_numpy(ds.get_data_info(i)['gt_cls_label']))
        assert 'img_box' in sample.metainfo
