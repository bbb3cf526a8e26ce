# Copyright (c) OpenMMLab. All rights reserved.
"""tools/dataset_converters/cocostuff10k.py on a tiny fake COCO-Stuff 10K
v1.1 release, and the dataset config on its output."""
import importlib.util
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image
from scipy.io import savemat

import mmseg_wsss  # noqa: F401  (registers modules, applies compat)
from mmseg.utils import register_all_modules
from mmseg_wsss.datasets.metainfo import VOC_CLASSES
from mmseg_wsss.registry import DATASETS

register_all_modules()

# The tiny release has fewer images than the real one (9,000 / 1,000).
pytestmark = pytest.mark.filterwarnings(
    r'ignore:(train|val) has \d+ images, not the:UserWarning')
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO_ROOT, 'tools', 'dataset_converters', 'cocostuff10k.py')
CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                  'cocostuff10k-voc20_321x321.py')
H, W = 20, 30

# COCO-Stuff v1.1 ids (dataset/cocostuff-labels.txt of nightrome/cocostuff10k)
UNLABELED, PERSON, BICYCLE, CAR, MOTORCYCLE, AIRPLANE = 0, 1, 2, 3, 4, 5
BUS, TRAIN, BOAT = 6, 7, 9
BIRD, CAT, DOG, HORSE, SHEEP, COW = 16, 17, 18, 19, 20, 21
GIRAFFE, BOTTLE, CHAIR, COUCH, POTTED_PLANT = 25, 44, 62, 63, 64
DINING_TABLE, TV = 67, 72
GRASS, SKY, TABLE_STUFF, FLOWER = 124, 157, 165, 119  # stuff
# The 20 VOC classes and their COCO-Stuff v1.1 ids, written out by hand.
VOC_IDS = {
    'aeroplane': AIRPLANE, 'bicycle': BICYCLE, 'bird': BIRD, 'boat': BOAT,
    'bottle': BOTTLE, 'bus': BUS, 'car': CAR, 'cat': CAT, 'chair': CHAIR,
    'cow': COW, 'diningtable': DINING_TABLE, 'dog': DOG, 'horse': HORSE,
    'motorbike': MOTORCYCLE, 'person': PERSON, 'pottedplant': POTTED_PLANT,
    'sheep': SHEEP, 'sofa': COUCH, 'train': TRAIN, 'tvmonitor': TV
}  # yapf: disable


def _load_script():
    spec = importlib.util.spec_from_file_location('_wsss_conv_cocostuff10k',
                                                  SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so worker processes can unpickle
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def conv():
    return _load_script()


def _v11_names():
    """A v1.1 `names` list: the real names of the 20 mapped ids."""
    names = [f'class-{i}' for i in range(1, 183)]
    for voc, cs_id in VOC_IDS.items():
        names[cs_id - 1] = {
            'aeroplane': 'airplane', 'diningtable': 'dining table',
            'motorbike': 'motorcycle', 'pottedplant': 'potted plant',
            'sofa': 'couch', 'tvmonitor': 'tv'
        }.get(voc, voc)  # yapf: disable
    return names


def _label_maps():
    """name -> S of the fake release (split, S)."""
    a = np.full((H, W), SKY, np.uint16)
    a[0, :] = UNLABELED
    a[2:8, 2:10] = PERSON
    a[10:15, 12:20] = CAR
    a[15:20, 0:5] = GIRAFFE
    b = np.full((H, W), GRASS, np.uint16)
    b[0:5, 0:5] = TV
    b[5:10, 0:10] = COUCH
    b[10:15, 0:10] = DINING_TABLE
    b[15:20, 0:10] = TABLE_STUFF
    c = np.full((H, W), FLOWER, np.uint16)  # no VOC class
    c[0:10, 0:10] = GIRAFFE
    c[10:, :] = UNLABELED
    d = np.full((H, W), SKY, np.uint16)
    d[0:5, 0:5] = AIRPLANE
    d[5:10, 0:5] = MOTORCYCLE
    d[10:15, 0:5] = POTTED_PLANT
    d[15:20, 0:5] = BOTTLE
    return {
        'COCO_train2014_000000000001': ('train', a),
        'COCO_train2014_000000000002': ('train', b),
        'COCO_train2014_000000000003': ('train', c),
        'COCO_train2014_000000000004': ('test', d),
    }


A, B, C, D = sorted(_label_maps())
EXPECTED_LABELS = {A: [7, 15], B: [11, 18, 20], C: [], D: [1, 5, 14, 16]}


def make_release(root):
    """The layout of the unzipped cocostuff-10k-v1.1.zip."""
    for sub in ('images', 'annotations', 'imageLists'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    lists = {'train': [], 'test': []}
    for i, (name, (split, seg)) in enumerate(sorted(_label_maps().items())):
        img = np.full((H, W, 3), 40 * i, np.uint8)
        Image.fromarray(img).save(osp.join(root, 'images', name + '.jpg'))
        mat = {'S': seg}
        if name == B:  # as the release: with the class names
            mat['names'] = np.array(_v11_names(), dtype=object)
        savemat(osp.join(root, 'annotations', name + '.mat'), mat)
        lists[split].append(name)
    for split, names in lists.items():
        with open(osp.join(root, 'imageLists', split + '.txt'), 'w') as f:
            f.writelines(n + '\n' for n in names)
    return str(root)


@pytest.fixture(scope='module')
def converted(conv, tmp_path_factory):
    base = tmp_path_factory.mktemp('cocostuff')
    root = make_release(base / 'cocostuff10k')
    with pytest.warns(UserWarning, match='train has 3 images, not the 9000'):
        labels = conv.main([root])  # default output: beside the release
    return root, str(base / 'cocostuff10k_voc20'), labels


def _png(path):
    with Image.open(path) as img:
        assert img.mode == 'P'
        return np.array(img)


def test_lut_maps_every_id(conv):
    voc = conv.to_voc(np.arange(183))
    assert voc[0] == 255  # unlabeled
    expected = np.zeros(183, np.uint8)
    expected[0] = 255
    for name, cs_id in VOC_IDS.items():
        expected[cs_id] = VOC_CLASSES.index(name)
    np.testing.assert_array_equal(voc, expected)
    assert sorted(voc[(voc > 0) & (voc < 255)]) == list(range(1, 21))


def test_masks(converted):
    _, out, _ = converted
    seg = _png(osp.join(out, 'SegmentationClass', A + '.png'))
    assert seg.shape == (H, W)
    assert seg[0, 5] == 255  # unlabeled
    assert seg[4, 4] == 15  # person
    assert seg[12, 15] == 7  # car
    assert seg[17, 2] == 0  # giraffe: a non-VOC thing
    assert seg[12, 25] == 0  # sky: stuff
    assert set(np.unique(seg)) == {0, 7, 15, 255}
    seg = _png(osp.join(out, 'SegmentationClass', B + '.png'))
    assert seg[2, 2] == 20 and seg[7, 2] == 18 and seg[12, 2] == 11
    assert seg[17, 2] == 0  # the stuff class "table" is not diningtable
    assert seg[2, 20] == 0  # grass
    seg = _png(osp.join(out, 'SegmentationClass', C + '.png'))
    assert set(np.unique(seg)) == {0, 255}
    seg = _png(osp.join(out, 'SegmentationClass', D + '.png'))
    assert [seg[2, 2], seg[7, 2], seg[12, 2], seg[17, 2]] == [1, 14, 16, 5]


def test_labels_splits_and_images(converted):
    root, out, labels = converted
    assert labels == EXPECTED_LABELS
    with open(osp.join(out, 'cls_labels.json')) as f:
        assert json.load(f) == EXPECTED_LABELS

    def lines(*parts):
        with open(osp.join(out, *parts)) as f:
            return f.read().split()

    split_dir = ('ImageSets', 'Segmentation')
    assert lines(*split_dir, 'train.txt') == [A, B, C]
    assert lines(*split_dir, 'val.txt') == [D]
    assert lines(*split_dir, 'test.txt') == [D]
    assert lines('classes.txt') == list(VOC_CLASSES)
    link = osp.join(out, 'JPEGImages', A + '.jpg')
    assert osp.islink(link)
    assert os.readlink(link) == osp.abspath(
        osp.join(root, 'images', A + '.jpg'))


def test_rerun_copy_parallel_is_idempotent(conv, converted, tmp_path):
    root, out, _ = converted
    again = str(tmp_path / 'again')
    labels = conv.main([root, '-o', again, '--copy-images', '--nproc', '2'])
    assert labels == EXPECTED_LABELS
    img = osp.join(again, 'JPEGImages', A + '.jpg')
    assert osp.isfile(img) and not osp.islink(img)
    labels = conv.main([root, '-o', again])  # over the copies: links
    assert labels == EXPECTED_LABELS and osp.islink(img)
    for name in EXPECTED_LABELS:
        np.testing.assert_array_equal(
            _png(osp.join(out, 'SegmentationClass', name + '.png')),
            _png(osp.join(again, 'SegmentationClass', name + '.png')))


def test_missing_inputs(conv, tmp_path):
    root = make_release(tmp_path / 'cs')
    os.rename(osp.join(root, 'annotations'), osp.join(root, 'ann'))
    with pytest.raises(FileNotFoundError) as info:
        conv.main([root, '-o', str(tmp_path / 'out')])
    msg = str(info.value)
    assert osp.join(root, 'annotations') in msg
    assert 'cocostuff-10k-v1.1.zip' in msg and 'imageLists' in msg
    os.rename(osp.join(root, 'ann'), osp.join(root, 'annotations'))
    os.remove(osp.join(root, 'annotations', C + '.mat'))
    with pytest.raises(FileNotFoundError, match=C + '.mat'):
        conv.main([root, '-o', str(tmp_path / 'out')])
    with pytest.raises(FileNotFoundError, match='nowhere'):
        conv.main([str(tmp_path / 'nowhere')])
    assert not osp.exists(tmp_path / 'out')  # checked before any writing


def test_bad_annotations(conv, tmp_path):
    root = make_release(tmp_path / 'cs')
    mat = osp.join(root, 'annotations', D + '.mat')
    seg = _label_maps()[D][1]
    savemat(mat, {'S': np.full((H, W), 183, np.uint16)})
    with pytest.raises(ValueError, match='0..182'):
        conv.main([root, '-o', str(tmp_path / 'out')])
    savemat(mat, {'S': seg[:10]})
    with pytest.raises(ValueError, match='10x30'):
        conv.main([root, '-o', str(tmp_path / 'out')])
    v10_names = ['unlabeled'] + [f'class-{i}' for i in range(171)]
    savemat(mat, {'S': seg, 'names': np.array(v10_names, dtype=object)})
    with pytest.raises(ValueError, match='v1.0'):
        conv.main([root, '-o', str(tmp_path / 'out')])
    names = _v11_names()
    names[PERSON - 1], names[CAR - 1] = names[CAR - 1], names[PERSON - 1]
    savemat(mat, {'S': seg, 'names': np.array(names, dtype=object)})
    with pytest.raises(ValueError, match='person'):
        conv.main([root, '-o', str(tmp_path / 'out')])


def test_config_datasets(converted):
    _, out, _ = converted
    cfg = Config.fromfile(CONFIG)
    assert cfg.data_root == 'data/cocostuff10k_voc20'
    assert cfg.crop_size == (321, 321)
    assert [t['type'] for t in cfg.train_pipeline] == [
        'LoadImageFromFile', 'RandomRescale', 'RandomFlip',
        'RandomCropWithBox', 'PackWSSSInputs'
    ]
    assert cfg.train_pipeline[1]['ratio_range'] == (0.7, 1.3)
    assert cfg.test_dataloader == cfg.val_dataloader

    val = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=out))
    assert len(val) == 1
    sample = val[0]['data_samples']
    assert osp.basename(sample.img_path) == D + '.jpg'
    assert np.flatnonzero(sample.gt_cls_label.data.numpy()).tolist() == [
        i - 1 for i in EXPECTED_LABELS[D]
    ]
    seg = sample.gt_sem_seg.data.numpy()[0]
    assert seg.shape == (H, W) and seg[2, 2] == 1 and seg[7, 2] == 14

    # C has no VOC class: the training set drops it.
    train = DATASETS.build(
        dict(
            cfg.train_dataloader.dataset,
            data_root=out,
            check_images_workers=0))
    assert [
        osp.basename(train.get_data_info(i)['img_path'])
        for i in range(len(train))
    ] == [A + '.jpg', B + '.jpg']
    packed = train[0]
    assert tuple(packed['inputs'].shape) == (3, 321, 321)
    assert 'gt_sem_seg' not in packed['data_samples']
