# Copyright (c) OpenMMLab. All rights reserved.
"""PseudoLabelDataset (second stage on exported pseudo labels) and
tools/second_stage.sh."""
import json
import os
import os.path as osp
import subprocess

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import ConcatDataset
from PIL import Image

from conftest import REPO_ROOT, write_fake_pseudo_labels
from tool_runs import FAST

from mmseg_wsss.datasets import PseudoLabelDataset, WSSSCustomDataset
from mmseg_wsss.registry import DATASETS
from mmseg_wsss.utils import set_data_root

pytestmark = pytest.mark.usefixtures('one_thread')

SECOND = osp.join(REPO_ROOT, 'configs', 'second_stage')
TOY = osp.join(SECOND, 'deeplabv2_toy.py')
PLAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]


def _inner(root, split='train', **kwargs):
    cfg = dict(
        type='WSSSCustomDataset',
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        with_seg_map=False,
        pipeline=PLAIN_PIPELINE)
    cfg.update(kwargs)
    return cfg


@pytest.fixture(scope='module')
def pseudo_dir(toy_root, tmp_path_factory):
    """Fake pseudo labels of the toy train split (32 images, 48 px)."""
    out = str(tmp_path_factory.mktemp('pseudo') / 'labels')
    names = write_fake_pseudo_labels(toy_root, out)
    assert len(names) == 32
    return out


def test_paths_replaced_and_labels_read(toy_root, pseudo_dir):
    ds = DATASETS.build(
        dict(
            type='PseudoLabelDataset',
            dataset=_inner(toy_root),
            pseudo_label_dir=pseudo_dir))
    assert isinstance(ds, PseudoLabelDataset) and len(ds) == 32
    assert ds.metainfo['classes'][0] == 'background'
    for i in (0, 31):
        info = ds.get_data_info(i)
        name = osp.splitext(osp.basename(info['img_path']))[0]
        assert info['seg_map_path'] == osp.join(pseudo_dir, name + '.png')
        assert info['reduce_zero_label'] is False
        label = np.asarray(Image.open(info['seg_map_path']))
        sample = ds[i]['data_samples']
        assert sample.seg_map_path == info['seg_map_path']
        assert torch.equal(sample.gt_sem_seg.data[0],
                           torch.from_numpy(label.copy()).long())
    # The wrapped dataset itself carries no mask path (with_seg_map=False).
    assert 'seg_map_path' not in ds.dataset.get_data_info(0)


def test_missing_and_wrong_size_labels_named(toy_root, pseudo_dir, tmp_path):
    folder = str(tmp_path / 'labels')
    os.makedirs(folder)
    names = sorted(f[:-4] for f in os.listdir(pseudo_dir))
    for n in names[12:]:
        os.link(osp.join(pseudo_dir, n + '.png'), osp.join(folder, n + '.png'))
    # Two wrong sizes, one RGB picture instead of class ids.
    for n in names[12:14]:
        os.remove(osp.join(folder, n + '.png'))
        Image.new('P', (40, 48)).save(osp.join(folder, n + '.png'))
    os.remove(osp.join(folder, names[14] + '.png'))
    Image.new('RGB', (48, 48)).save(osp.join(folder, names[14] + '.png'))
    cfg = dict(dataset=_inner(toy_root), pseudo_label_dir=folder)
    with pytest.raises(FileNotFoundError) as info:
        PseudoLabelDataset(**cfg)
    msg = str(info.value)
    assert '12 of the 32 training images have no pseudo label' in msg
    for n in names[:10]:  # the first ten, then the count of the others
        assert osp.join(folder, n + '.png') in msg
    assert names[10] not in msg and '... and 2 more' in msg
    assert '3 pseudo label(s) do not fit' in msg
    assert f'{names[12]}.png: 40x48, image ' in msg
    assert 'is 48x48 (width x height)' in msg
    assert f'{names[14]}.png: mode RGB, not a class-index map' in msg
    assert 'tools/make_pseudo_labels.py' in msg
    assert 'tools/second_stage.sh' in msg

    # Only wrong sizes: a ValueError, same listing.
    for n in names[:12]:
        os.link(osp.join(pseudo_dir, n + '.png'), osp.join(folder, n + '.png'))
    with pytest.raises(ValueError, match='3 pseudo label'):
        PseudoLabelDataset(**cfg)
    # Checking can be deferred (lazy_init) and switched off.
    lazy = PseudoLabelDataset(**cfg, lazy_init=True)
    with pytest.raises(ValueError, match='do not fit'):
        lazy.full_init()
    assert len(PseudoLabelDataset(**cfg, check_labels=False)) == 32


def test_missing_folder(toy_root, tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as info:
        PseudoLabelDataset(dataset=_inner(toy_root), pseudo_label_dir=missing)
    assert f'Pseudo-label folder {missing} does not exist' in str(info.value)
    assert 'tools/make_pseudo_labels.py' in str(info.value)
    with pytest.raises(ValueError, match='needs `pseudo_label_dir`'):
        PseudoLabelDataset(dataset=_inner(toy_root), pseudo_label_dir='')


def test_exif_rotated_image_counts_as_decoded(tmp_path):
    from mmseg_wsss.datasets.pseudo_label_dataset import decoded_size
    im = Image.new('RGB', (20, 10))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90: OpenCV decodes it as 10 x 20
    im.save(str(tmp_path / 'a.jpg'), exif=exif.tobytes())
    im.save(str(tmp_path / 'b.jpg'))
    assert decoded_size(str(tmp_path / 'a.jpg')) == (10, 20)
    assert decoded_size(str(tmp_path / 'b.jpg')) == (20, 10)


def test_wraps_concat_datasets(toy_root, pseudo_dir, tmp_path):
    """Every sample of a ConcatDataset gets its pseudo label and goes
    through its own sub-dataset's pipeline."""
    val_dir = str(tmp_path / 'val_labels')
    write_fake_pseudo_labels(toy_root, val_dir, split='val', seed=1)
    both = str(tmp_path / 'both')  # one folder for both splits
    os.makedirs(both)
    for d in (pseudo_dir, val_dir):
        for n in os.listdir(d):
            os.link(osp.join(d, n), osp.join(both, n))
    # The second part keeps its real mask path: the wrapper replaces it.
    flipped = PLAIN_PIPELINE[:2] + [
        dict(type='RandomFlip', prob=1.0),
        dict(type='PackSegInputs')
    ]
    ds = PseudoLabelDataset(
        dataset=dict(
            type='ConcatDataset',
            datasets=[
                _inner(toy_root),
                _inner(toy_root, 'val', with_seg_map=True, pipeline=flipped)
            ]),
        pseudo_label_dir=both)
    assert isinstance(ds.dataset, ConcatDataset) and len(ds) == 40
    assert all(
        osp.dirname(ds.get_data_info(i)['seg_map_path']) == both
        for i in range(40))
    last = ds[39]['data_samples']
    label = np.asarray(Image.open(ds.get_data_info(39)['seg_map_path']))
    assert last.flip and torch.equal(last.gt_sem_seg.data[0],
                                     torch.from_numpy(label[:, ::-1].copy()))
    assert not ds[0]['data_samples'].get('flip', False)


def test_second_stage_config_validation_is_untouched(toy_root, pseudo_dir):
    cfg = Config.fromfile(TOY)
    set_data_root(cfg, toy_root)
    train = cfg.train_dataloader.dataset
    assert train.type == 'PseudoLabelDataset'
    assert train.dataset.with_seg_map is False
    train.pseudo_label_dir = pseudo_dir
    ds = DATASETS.build(train)
    assert osp.dirname(ds.get_data_info(0)['seg_map_path']) == pseudo_dir
    for key in ('val_dataloader', 'test_dataloader'):
        val_cfg = cfg[key].dataset
        assert val_cfg.type == 'WSSSCustomDataset'
        val = DATASETS.build(val_cfg)
        assert isinstance(val, WSSSCustomDataset) and len(val) == 8
        assert all(
            val.get_data_info(i)['seg_map_path'].startswith(
                osp.join(toy_root, 'SegmentationClass', 'val_'))
            for i in range(len(val)))


def test_second_stage_script_trains_tests_and_resumes(toy_root, pseudo_dir,
                                                      tmp_path):
    """tools/second_stage.sh with the pseudo labels and the single-stage
    test already there (tools/make_pseudo_labels.py is tested on its own):
    a 2-iteration toy second stage through tools/train.py, its test, the
    two mIoUs; a second run skips every step."""
    work = tmp_path / 'work'
    os.makedirs(work / 'single_stage_test')
    os.symlink(pseudo_dir, work / 'pseudo_labels')
    with open(work / 'single_stage_test' / 'metrics.json', 'w') as f:
        json.dump(dict(aAcc=50.0, mIoU=12.5), f)
    quiet = [
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]
    env = dict(
        os.environ,
        TEST_ARGS='--cfg-options ' + ' '.join(quiet),
        OMP_NUM_THREADS='1')
    cmd = [
        'bash', 'tools/second_stage.sh', 'configs/cam_baseline/'
        'cam_resnet_toy.py', 'no_such_checkpoint.pth', TOY,
        str(work), '--data-root', toy_root, '--cfg-options', *FAST,
        'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
        'train_dataloader.dataset.dataset.check_images_workers=0'
    ]
    run = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'pseudo labels: ' in run.stdout and 'exists, skipped' in run.stdout
    log = (work / 'second_stage_train.log').read_text()
    assert 'Iter(train) [2/2]' in log
    assert f'all 32 training images have a label of their size in ' \
           f'{work / "pseudo_labels"}' in log
    ckpt = (work / 'second_stage' / 'last_checkpoint').read_text().strip()
    assert ckpt.endswith('iter_2.pth') and osp.isfile(ckpt)
    metrics = json.loads(
        (work / 'second_stage_test' / 'metrics.json').read_text())
    last = run.stdout.strip().splitlines()[-1]
    assert last == (f'val mIoU  single stage: 12.50  second stage: '
                    f'{metrics["mIoU"]:.2f}  '
                    f'({metrics["mIoU"] - 12.5:+.2f})')

    again = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count('exists, skipped') == 4
    assert again.stdout.strip().splitlines()[-1] == last
