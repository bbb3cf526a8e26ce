# Copyright (c) OpenMMLab. All rights reserved.
"""Bad dataset inputs give errors that say what is wrong, and the derived
labels file is written safely (atomic, usual permissions, rank 0 only)."""
import errno
import json
import logging
import os
import os.path as osp
import threading

import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

import mmseg_wsss.datasets.wsss_base_dataset as base_module
from mmseg_wsss.datasets import WSSSCustomDataset, save_cls_labels

MASKS = {'a': [1], 'b': [2], 'c': [1, 2], 'd': [2]}
SPLITS = {'train': ['a', 'b', 'c'], 'val': ['d']}


def _voc(root, labels=True):
    """A tiny VOC-layout folder (classes background, cat, dog)."""
    rng = np.random.RandomState(0)
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    for name, ids in MASKS.items():
        Image.fromarray(rng.randint(0, 256, (16, 16, 3), np.uint8)).save(
            osp.join(root, 'JPEGImages', name + '.jpg'))
        mask = np.zeros((16, 16), np.uint8)
        for k, i in enumerate(ids):
            mask[2 + 5 * k:6 + 5 * k, 3:12] = i
        Image.fromarray(mask).save(
            osp.join(root, 'SegmentationClass', name + '.png'))
    for split, names in SPLITS.items():
        with open(osp.join(root, f'ImageSets/Segmentation/{split}.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')
    with open(osp.join(root, 'classes.txt'), 'w') as f:
        f.write('background\ncat\ndog\n')
    if labels:
        with open(osp.join(root, 'cls_labels.json'), 'w') as f:
            json.dump(MASKS, f)
    return str(root)


def _build(root, split='train', **kw):
    return WSSSCustomDataset(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        pipeline=[],
        **kw)


class _Captured(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def messages(self, level=logging.INFO):
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def log():
    """The messages of mmengine's current logger (what the run's log
    shows)."""
    logger = MMLogger.get_current_instance()
    handler = _Captured()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


# ---------------------------------------------------------- empty split --


def test_empty_split_file_is_named(tmp_path):
    root = _voc(tmp_path)
    split = osp.join(root, 'ImageSets/Segmentation/train.txt')
    open(split, 'w').close()
    with pytest.raises(ValueError) as info:
        _build(root)
    msg = str(info.value)
    assert f'Split file {split} is empty' in msg
    assert 'concatenate' not in msg


def test_skip_policy_leaving_no_image_is_an_error(tmp_path):
    root = _voc(tmp_path)
    with open(osp.join(root, 'cls_labels.json'), 'w') as f:
        json.dump({n: [] for n in MASKS}, f)
    with pytest.raises(ValueError, match='leaves no image'):
        _build(root, empty_label_policy='skip')


# ------------------------------------------------- derived labels file --


def test_derived_labels_file_has_the_usual_mode(tmp_path, umask_022, log):
    root = _voc(tmp_path, labels=False)
    ds = _build(root, with_seg_map=False)
    path = osp.join(root, 'cls_labels.json')
    assert len(ds) == 3
    assert os.stat(path).st_mode & 0o777 == 0o644  # was 0o600 (mkstemp)
    with open(path) as f:
        assert json.load(f) == MASKS
    assert sorted(os.listdir(root)) == [
        'ImageSets', 'JPEGImages', 'SegmentationClass', 'classes.txt',
        'cls_labels.json'
    ]  # no temporary file left
    # The user is told, once.
    derived = [m for m in log.messages() if 'deriving it from' in m]
    assert len(derived) == 1 and path in derived[0]
    assert any(f'Wrote image-level labels of 4 images to {path}' in m
               for m in log.messages())


def test_save_cls_labels_respects_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        save_cls_labels(str(tmp_path / 'l.json'), {'x': [3, 1]})
    finally:
        os.umask(old)
    assert os.stat(tmp_path / 'l.json').st_mode & 0o777 == 0o640
    with open(tmp_path / 'l.json') as f:
        assert json.load(f) == {'x': [1, 3]}


def test_concurrent_writers_never_expose_a_partial_file(tmp_path):
    """Ranks writing the labels file at once: a reader sees a whole file
    (the old one or a new one), never a mix or a truncated one."""
    path = str(tmp_path / 'cls_labels.json')
    labels = {f'img_{i:05d}': [1 + i % 20] for i in range(3000)}
    save_cls_labels(path, labels)
    errors = []

    def write():
        try:
            for _ in range(5):
                save_cls_labels(path, labels)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    writers = [threading.Thread(target=write) for _ in range(3)]
    for t in writers:
        t.start()
    reads = 0
    while any(t.is_alive() for t in writers) or reads < 3:
        with open(path) as f:
            assert json.load(f) == labels
        reads += 1
    for t in writers:
        t.join()
    assert not errors
    assert os.listdir(tmp_path) == ['cls_labels.json']


def test_read_only_data_root_derives_into_memory(tmp_path, monkeypatch, log):
    """The labels cannot be saved: the run goes on with the derived labels
    and the warning says where to save them instead."""
    root = _voc(tmp_path, labels=False)

    def read_only(path, labels):
        raise OSError(errno.EROFS, 'Read-only file system', path)

    # Tests run as root, for whom chmod does not make a folder read-only.
    monkeypatch.setattr(base_module, 'save_cls_labels', read_only)
    ds = _build(root, with_seg_map=False)
    assert len(ds) == 3
    got = {
        osp.basename(d['img_path']): d['gt_cls_label'].tolist()
        for d in (ds.get_data_info(i) for i in range(3))
    }
    assert got == {'a.jpg': [1, 0], 'b.jpg': [0, 1], 'c.jpg': [1, 1]}
    assert not osp.exists(osp.join(root, 'cls_labels.json'))
    (warning, ) = log.messages(logging.WARNING)
    assert 'Could not save the derived image-level labels to ' + osp.join(
        root, 'cls_labels.json') in warning
    assert 'Read-only file system' in warning
    assert 'cls_label_file' in warning and 'writable' in warning

    # A writable cls_label_file elsewhere is where they are then saved.
    monkeypatch.undo()
    elsewhere = str(tmp_path / 'work' / 'cls_labels.json')
    ds = _build(root, with_seg_map=False, cls_label_file=elsewhere)
    with open(elsewhere) as f:
        assert json.load(f) == MASKS


def test_only_rank_0_writes_and_logs(tmp_path, monkeypatch, log):
    """In a distributed run rank 0 derives, writes and logs; another rank
    derives in memory, silently (its log shows errors only, so a message
    there would be lost), and never writes."""
    root = _voc(tmp_path, labels=False)
    path = osp.join(root, 'cls_labels.json')
    monkeypatch.setattr(base_module, 'get_dist_info', lambda: (1, 2))
    ds = _build(root, with_seg_map=False)
    assert len(ds) == 3 and ds.get_data_info(0)['gt_cls_label'].sum() > 0
    assert not osp.exists(path)
    assert not log.records

    monkeypatch.setattr(base_module, 'get_dist_info', lambda: (0, 2))
    _build(root, with_seg_map=False)
    assert osp.isfile(path)
    assert len([m for m in log.messages() if 'deriving it from' in m]) == 1
