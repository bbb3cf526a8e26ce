# Copyright (c) OpenMMLab. All rights reserved.
"""The up-front image check finds every damaged image in one run and names
them all in one error, before any training step."""
import io
import json
import multiprocessing
import os
import os.path as osp
import traceback

import numpy as np
import pytest
from mmengine import Config
from PIL import Image, ImageFile

from conftest import REPO_ROOT
from mmseg_wsss.datasets import (CorruptImageError, WSSSCustomDataset,
                                 check_images, find_bad_images)
from mmseg_wsss.datasets.image_check import decode_error


def _image(seed=0, size=(96, 128)):
    rng = np.random.RandomState(seed)
    low = rng.randint(0, 256, (6, 8, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(low).resize(size[::-1], Image.BICUBIC))


def _encoded(fmt, seed=0):
    buf = io.BytesIO()
    Image.fromarray(_image(seed)).save(buf, fmt)
    return buf.getvalue()


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


@pytest.fixture
def files(tmp_path):
    """Two good images and the four kinds of damage met in practice."""
    jpg, png = _encoded('JPEG'), _encoded('PNG')
    good = [
        _write(tmp_path / 'good.jpg', jpg),
        _write(tmp_path / 'good.png', png)
    ]
    bad = {
        # A cut-off download: the header is intact, the data ends early.
        _write(tmp_path / 'truncated.jpg', jpg[:len(jpg) * 3 // 4]):
        'truncated',
        _write(tmp_path / 'zero.jpg', b''):
        'empty file',
        _write(tmp_path / 'text.jpg', b'<html>404 Not Found</html>\n'):
        'not an image',
        _write(tmp_path / 'truncated.png', png[:len(png) // 2]):
        'truncated',
    }
    return good, bad


def test_truncated_jpeg_opens_but_does_not_decode(files):
    """Why the check decodes: a truncated JPEG passes PIL's open/verify."""
    _, bad = files
    path = [p for p in bad if p.endswith('truncated.jpg')][0]
    with Image.open(path) as im:
        im.verify()  # no error: only a decode finds it
    assert decode_error(path).startswith('truncated')


@pytest.mark.parametrize('workers', [0, 2])
def test_every_bad_file_named_in_one_error(files, workers):
    good, bad = files
    paths = sorted(good + list(bad))
    with pytest.raises(CorruptImageError) as info:
        check_images(
            paths, workers=workers, progress=False, source='split.txt')
    err = info.value
    msg = str(err)
    assert msg.startswith(f'4 of {len(paths)} image(s) listed in split.txt')
    for path, reason in bad.items():
        line = [ln for ln in msg.splitlines() if path in ln]
        assert len(line) == 1 and reason in line[0], (path, msg)
    for path in good:
        assert path not in msg
    assert [p for p, _ in err.bad] == sorted(bad)
    assert err.log_file is None  # few enough to list them all


def test_good_files_pass(files):
    good, _ = files
    check_images(good * 20, workers=2, progress=False)
    assert find_bad_images(good, workers=0, progress=False) == []
    assert find_bad_images([], workers=2) == []


def test_truncated_found_even_if_pil_would_load_it(files, monkeypatch):
    """PIL's LOAD_TRUNCATED_IMAGES (set by some code bases) must not hide a
    truncated file from the check."""
    _, bad = files
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
    found = dict(find_bad_images(sorted(bad), workers=0, progress=False))
    assert all(path in found for path in bad)
    assert found[[p for p in bad if p.endswith('truncated.png')][0]] \
        .startswith('truncated')
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_many_bad_files_listed_in_a_file(tmp_path, capsys):
    jpg = _encoded('JPEG')
    paths = [
        _write(tmp_path / f'{i:02d}.jpg', jpg[:-100] if i % 2 else jpg)
        for i in range(30)
    ]
    log_file = str(tmp_path / 'logs' / 'bad.txt')
    with pytest.raises(CorruptImageError) as info:
        check_images(paths, workers=2, log_file=log_file, max_listed=10)
    msg = str(info.value)
    assert msg.startswith('15 of 30 image(s) cannot be decoded')
    assert '... and 5 more; all 15 are listed in ' + log_file in msg
    assert sum(osp.join(str(tmp_path), '') in ln
               for ln in msg.splitlines()) == 10 + 1  # + the file's line
    with open(log_file) as f:
        lines = f.read().splitlines()
    assert [ln.split('\t')[0] for ln in lines] == paths[1::2]
    assert all(ln.split('\t')[1].startswith('truncated') for ln in lines)
    assert info.value.log_file == log_file
    assert '30/30' in capsys.readouterr().out  # the progress bar ran


# ------------------------------------------------------------- dataset --


def _voc(root, names=('a', 'b', 'c', 'd')):
    """A tiny VOC-layout folder: every image is of class 1."""
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    for i, name in enumerate(names):
        _write(
            osp.join(root, 'JPEGImages', name + '.jpg'), _encoded('JPEG', i))
        mask = np.zeros((96, 128), np.uint8)
        mask[5:20, 5:20] = 1
        Image.fromarray(mask).save(
            osp.join(root, 'SegmentationClass', name + '.png'))
    for split in ('train', 'val'):
        with open(osp.join(root, f'ImageSets/Segmentation/{split}.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')
    with open(osp.join(root, 'classes.txt'), 'w') as f:
        f.write('background\nthing\n')
    with open(osp.join(root, 'cls_labels.json'), 'w') as f:
        json.dump({n: [1] for n in names}, f)
    return str(root)


def _build(root, **kw):
    return WSSSCustomDataset(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=[dict(type='LoadImageFromFile')],
        **kw)


def _truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    _write(path, data[:len(data) // 2])


def test_dataset_check_images_raises_at_build(tmp_path):
    root = _voc(tmp_path)
    for name in ('b', 'd'):
        _truncate(osp.join(root, 'JPEGImages', name + '.jpg'))
    with pytest.raises(CorruptImageError) as info:
        _build(root, check_images=True, check_images_workers=2)
    msg = str(info.value)
    assert msg.startswith('2 of 4 image(s) listed in ' +
                          osp.join(root, 'ImageSets/Segmentation/train.txt'))
    for name in ('b', 'd'):
        assert osp.join(root, 'JPEGImages', name + '.jpg: truncated') in msg
    assert 'check_images=False' in msg

    # Off (the default of the class), the dataset builds and the training
    # pipeline fails only when it reads the file; the error now says why.
    ds = _build(root)
    assert len(ds) == 4
    names = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(4)]
    assert ds[names.index('a.jpg')]['img'].shape == (96, 128, 3)
    with pytest.raises(OSError) as info:
        ds[names.index('b.jpg')]
    assert 'b.jpg: truncated' in str(info.value)
    assert 'check_images=True' in str(info.value)
    # mmcv's loader (cv2.imdecode returns None) is what stops a run.
    assert 'failed to load image' in str(info.value.__cause__)


def test_training_datasets_of_the_base_configs_check_images():
    """Training datasets check their images; evaluation datasets do not
    (they are read in full at each validation, and a bad file there fails
    after the checkpoint of that iteration is saved)."""
    base = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets')
    names = sorted(f for f in os.listdir(base) if f.endswith('.py'))
    assert names
    for name in names:
        cfg = Config.fromfile(osp.join(base, name))
        train = cfg.train_dataloader.dataset
        if train.type == 'PseudoLabelDataset':  # second stages: the images
            train = train.dataset
        assert train.check_images is True, name
        assert not cfg.val_dataloader.dataset.get('check_images'), name
        assert not cfg.test_dataloader.dataset.get('check_images'), name


def _rank_main(rank, root, rdzv, out_dir):
    """One rank of a 2-process gloo group building a checked dataset."""
    import torch.distributed as dist

    import mmseg_wsss.datasets.wsss_base_dataset as base
    checked = []
    real = base.find_bad_images

    def spy(paths, **kw):
        checked.extend(paths)
        return real(paths, **kw)

    base.find_bad_images = spy
    result = dict(rank=rank)
    try:
        dist.init_process_group(
            'gloo', init_method=f'file://{rdzv}', rank=rank, world_size=2)
        try:
            _build(root, check_images=True, check_images_workers=0)
            result['error'] = None
        except CorruptImageError as e:
            result['error'] = str(e)
        result['checked'] = sorted(osp.basename(p) for p in checked)
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001  (reported to the parent)
        result['crash'] = traceback.format_exc()
    with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(result, f)


def test_dataset_check_images_distributed(tmp_path, monkeypatch):
    """2 ranks share the check (each decodes half) and both raise the same
    error naming the bad files of both halves."""
    root = _voc(tmp_path / 'data', names=('a', 'b', 'c', 'd', 'e', 'f'))
    for name in ('a', 'b'):  # the first image of each rank's half
        _truncate(osp.join(root, 'JPEGImages', name + '.jpg'))
    for key in ('LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'RANK', 'WORLD_SIZE'):
        monkeypatch.delenv(key, raising=False)
    ctx = multiprocessing.get_context('fork')
    procs = [
        ctx.Process(
            target=_rank_main,
            args=(rank, root, str(tmp_path / 'rdzv'), str(tmp_path)))
        for rank in (0, 1)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = []
    for rank in (0, 1):
        with open(tmp_path / f'rank{rank}.json') as f:
            results.append(json.load(f))
    for res in results:
        assert 'crash' not in res, res.get('crash')
        assert res['error'] is not None
        assert res['error'].startswith('2 of 6 image(s)')
        for name in ('a', 'b'):
            assert name + '.jpg: truncated' in res['error']
    assert results[0]['error'] == results[1]['error']
    assert results[0]['checked'] == ['a.jpg', 'c.jpg', 'e.jpg']
    assert results[1]['checked'] == ['b.jpg', 'd.jpg', 'f.jpg']
