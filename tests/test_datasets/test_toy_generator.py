# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import mmseg_wsss.datasets
from mmseg_wsss.datasets import cls_labels
from mmseg_wsss.datasets.cls_labels import (default_palette, labels_from_mask,
                                            load_cls_labels, read_classes_file)
from mmseg_wsss_light import toy_generator as tg
from mmseg_wsss_light import voc_layout

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_CLASSES = len(tg.TOY_CLASSES)
SMALL = dict(num_train=20, num_val=8, size=96, seed=3)


def _tree_bytes(root):
    """{relative path: bytes} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = osp.join(dirpath, f)
            with open(path, 'rb') as fh:
                out[osp.relpath(path, root)] = fh.read()
    return out


@pytest.fixture(scope='module')
def samples():
    """800 in-memory samples (fast: no disk, no JPEG; enough that the
    class-balance ratio is not dominated by sampling noise)."""
    return list(tg.iter_samples(800, size=96, seed=0))


@pytest.fixture(scope='module')
def small_dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy') / 'toy_ds')
    stats = tg.generate_dataset(root, workers=1, **SMALL)
    return root, stats


def test_classes_and_shapes():
    assert tg.TOY_CLASSES[0] == 'background'
    assert NUM_CLASSES - 1 >= tg.MIN_OBJECT_CLASSES
    assert len(set(tg.TOY_CLASSES)) == NUM_CLASSES
    assert set(tg.SHAPES) == set(tg.TOY_CLASSES[1:])
    assert len(set(tg.TOY_TEXTURES)) == NUM_CLASSES - 1
    assert tg.BIASED_CLASS in tg.TOY_CLASSES


def test_generate_sample_outputs():
    img, mask, info = tg.generate_sample(tg.sample_seed(0, 'train', 7), 96)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    assert mask.shape == (96, 96) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= set(range(NUM_CLASSES))
    assert 1 <= len(info['objects']) <= 3
    json.dumps(info)  # serialisable
    # Same stream, whatever form the seed takes -> same sample.
    ss = tg.sample_seed(0, 'train', 7)
    for seed in (ss, np.random.Generator(np.random.PCG64(ss))):
        img2, mask2, info2 = tg.generate_sample(seed, 96)
        np.testing.assert_array_equal(img, img2)
        np.testing.assert_array_equal(mask, mask2)
        assert info == info2
    img3, _, _ = tg.generate_sample(tg.sample_seed(0, 'val', 7), 96)
    assert not np.array_equal(img, img3)


def test_masks_agree_with_info(samples):
    for _, mask, info in samples:
        ids = [o['class_id'] for o in info['objects']]
        assert len(ids) == len(set(ids))  # one instance per class
        for o in info['objects']:
            visible = int((mask == o['class_id']).sum())
            assert visible == o['visible_area'] > 0
            assert o['visible_fraction'] >= tg.MIN_VISIBLE_FRACTION
            if o['visible_fraction'] == 1.:
                # Unoccluded: the full area is exactly what the mask shows.
                assert visible == o['full_area']
        assert labels_from_mask(mask, NUM_CLASSES) == sorted(ids)
        if info['context']:
            # The water context stays visible and is labelled background.
            assert info['context_pixels'] >= 0.05 * mask.size
        else:
            assert info['context_pixels'] == 0


def test_acceptance_statistics(samples):
    labels = [labels_from_mask(m, NUM_CLASSES) for _, m, _ in samples]
    stats = tg.dataset_stats(labels, [i for _, _, i in samples], 96)
    assert tg.check_acceptance(stats) == []
    # The same criteria, spelled out.
    assert stats['num_object_classes'] >= 8
    assert stats['objects_per_image']['0'] == 0
    assert stats['multi_object_fraction'] >= 0.30
    lo, hi = tg.OBJECT_AREA_RANGE
    assert (lo, hi) == (0.10, 0.35)
    assert lo <= stats['object_area_fraction']['min']
    assert stats['object_area_fraction']['max'] <= hi
    assert stats['clutter_fraction'] >= 0.5
    assert stats['num_images_with_biased_class'] >= 50
    assert stats['context_with_class'] >= 0.8
    assert stats['context_without_class'] >= 0.10
    assert stats['class_balance'] >= tg.MIN_CLASS_BALANCE
    # Occlusion happens.
    assert stats['visible_fraction']['occluded_objects'] > 0.2


def test_colour_does_not_identify_class(samples):
    # Mean colour of a class' pixels varies a lot across instances and its
    # average over instances is close to that of all objects.
    per_class = {k: [] for k in range(1, NUM_CLASSES)}
    for img, mask, info in samples:
        for o in info['objects']:
            per_class[o['class_id']].append(img[mask == o['class_id']].mean(0))
    overall = np.concatenate([np.asarray(c) for c in per_class.values()])
    for k, cols in per_class.items():
        cols = np.asarray(cols)
        assert cols.std(0).min() > 20, tg.TOY_CLASSES[k]
        assert np.abs(cols.mean(0) - overall.mean(0)).max() < 20, \
            tg.TOY_CLASSES[k]


def test_layout_and_formats(small_dataset):
    root, stats = small_dataset
    assert read_classes_file(osp.join(root,
                                      'classes.txt')) == list(tg.TOY_CLASSES)
    names = {}
    for split in ('train', 'val'):
        with open(osp.join(root, 'ImageSets', 'Segmentation',
                           f'{split}.txt')) as f:
            names[split] = f.read().splitlines()
        num = SMALL[f'num_{split}']
        assert names[split] == [f'{split}_{i:05d}' for i in range(num)]
    all_names = names['train'] + names['val']
    assert sorted(os.listdir(osp.join(root, 'JPEGImages'))) == sorted(
        f'{n}.jpg' for n in all_names)
    assert sorted(os.listdir(osp.join(root, 'SegmentationClass'))) == sorted(
        f'{n}.png' for n in all_names)

    flat_palette = [c for rgb in default_palette(NUM_CLASSES) for c in rgb]
    derived = {}
    for n in all_names:
        img = Image.open(osp.join(root, 'JPEGImages', f'{n}.jpg'))
        assert img.format == 'JPEG' and img.mode == 'RGB'
        assert img.size == (96, 96)
        png = Image.open(osp.join(root, 'SegmentationClass', f'{n}.png'))
        assert png.format == 'PNG' and png.mode == 'P'
        assert png.size == (96, 96)
        assert png.getpalette()[:len(flat_palette)] == flat_palette
        derived[n] = labels_from_mask(np.array(png), NUM_CLASSES)
        assert derived[n]  # every image holds an object
    assert load_cls_labels(osp.join(root, 'cls_labels.json')) == derived

    meta = tg.read_meta(root)
    assert meta['params'] == dict(
        generator_version=tg.GENERATOR_VERSION,
        jpeg_quality=95,
        classes=list(tg.TOY_CLASSES),
        **SMALL)
    assert sorted(meta['images']) == sorted(all_names)
    assert meta['stats'] == stats
    # Statistics recomputed from the masks on disk and the records agree.
    disk = tg.stats_from_disk(root)
    for key in ('train', 'val', 'all'):
        assert disk[key] == stats[key]
    assert stats['all']['num_images'] == len(all_names)


def test_deterministic_and_worker_independent(small_dataset, tmp_path):
    root, _ = small_dataset
    ref = _tree_bytes(root)
    again = str(tmp_path / 'again')
    tg.generate_dataset(again, workers=2, **SMALL)
    assert _tree_bytes(again) == ref
    other = str(tmp_path / 'other')
    tg.generate_dataset(other, workers=1, **dict(SMALL, seed=4))
    other_files = _tree_bytes(other)
    assert other_files.keys() == ref.keys()
    assert other_files['JPEGImages/train_00000.jpg'] != ref[
        'JPEGImages/train_00000.jpg']


def test_skip_if_complete(tmp_path):
    root = str(tmp_path / 'ds')
    params = dict(num_train=6, num_val=2, size=96, seed=0)
    msgs = []
    stats = tg.generate_dataset(root, workers=1, **params)
    meta_path = osp.join(root, 'toy_meta.json')
    os.utime(meta_path, (1, 1))
    assert tg.dataset_is_complete(root, **params)

    assert tg.generate_dataset(
        root, workers=1, log=msgs.append, **params) == stats
    assert any('skipping' in m for m in msgs)
    assert os.stat(meta_path).st_mtime == 1  # untouched

    # force, other parameters and a missing file each regenerate.
    tg.generate_dataset(root, workers=1, force=True, **params)
    assert os.stat(meta_path).st_mtime != 1
    assert not tg.dataset_is_complete(root, **dict(params, num_val=3))
    tg.generate_dataset(root, workers=1, **dict(params, num_val=3))
    assert tg.read_meta(root)['params']['num_val'] == 3
    os.remove(osp.join(root, 'JPEGImages', 'val_00001.jpg'))
    assert not tg.dataset_is_complete(root, **dict(params, num_val=3))
    tg.generate_dataset(root, workers=1, **dict(params, num_val=3))
    assert tg.dataset_is_complete(root, **dict(params, num_val=3))
    assert sorted(os.listdir(tmp_path)) == ['ds']  # no temp leftovers


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    root = str(tmp_path / 'ds')
    params = dict(num_train=6, num_val=2, size=96, seed=0)
    write = tg._write_sample
    calls = []

    def flaky(task):
        calls.append(task)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return write(task)

    monkeypatch.setattr(tg, '_write_sample', flaky)
    with pytest.raises(KeyboardInterrupt):
        tg.generate_dataset(root, workers=1, **params)
    assert os.listdir(tmp_path) == []

    # An existing dataset survives an interrupted regeneration.
    monkeypatch.setattr(tg, '_write_sample', write)
    tg.generate_dataset(root, workers=1, **params)
    before = _tree_bytes(root)
    calls.clear()
    monkeypatch.setattr(tg, '_write_sample', flaky)
    with pytest.raises(KeyboardInterrupt):
        tg.generate_dataset(root, workers=1, force=True, **params)
    assert _tree_bytes(root) == before
    assert os.listdir(tmp_path) == ['ds']


def test_refuses_to_replace_foreign_folder(tmp_path):
    root = tmp_path / 'not_toy'
    root.mkdir()
    (root / 'precious.txt').write_text('keep me')
    with pytest.raises(FileExistsError):
        tg.generate_dataset(str(root), num_train=2, num_val=1, workers=1)
    assert os.listdir(root) == ['precious.txt']


def test_label_helpers_have_one_home():
    # The generator and the package use the very same helpers, defined once
    # in mmseg_wsss_light.voc_layout (importable without torch/mmseg).
    names = ('IGNORE_INDEX', 'default_palette', 'labels_from_mask',
             'save_cls_labels')
    for name in names:
        obj = getattr(voc_layout, name)
        assert getattr(cls_labels, name) is obj, name
        if name != 'IGNORE_INDEX':
            assert obj.__module__ == 'mmseg_wsss_light.voc_layout', name
            assert getattr(mmseg_wsss.datasets, name) is obj, name
            assert getattr(tg, name) is obj, name
    assert voc_layout.IGNORE_INDEX == 255


def test_cli_writes_dataset_and_stays_light(tmp_path):
    out = str(tmp_path / 'cli_ds')
    script = osp.join(REPO, 'tools', 'generate_toy_dataset.py')
    # Run the CLI as `python tools/generate_toy_dataset.py ...` would (the
    # script's folder first on sys.path), in a fresh interpreter, and report
    # whether it pulled in the heavy stack (torch/mmseg/the package).
    code = ('import os, runpy, sys; sys.argv = sys.argv[1:]; '
            'sys.path.insert(0, os.path.dirname(sys.argv[0])); '
            'rc = 0\n'
            'try:\n'
            '    runpy.run_path(sys.argv[0], run_name="__main__")\n'
            'except SystemExit as e:\n'
            '    rc = e.code\n'
            'print("HEAVY", sorted(m for m in ("torch", "mmseg", "mmseg_wsss")'
            ' if m in sys.modules))\n'
            'sys.exit(rc)')
    cmd = [
        sys.executable, '-c', code, script, out, '--num-train', '2',
        '--num-val', '1', '--size', '32', '--workers', '2'
    ]
    first = subprocess.run(
        cmd, capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert first.returncode == 0, first.stderr
    assert 'HEAVY []' in first.stdout, first.stdout
    names = ['train_00000', 'train_00001', 'val_00000']
    assert sorted(os.listdir(out)) == [
        'ImageSets', 'JPEGImages', 'SegmentationClass', 'classes.txt',
        'cls_labels.json', 'toy_meta.json'
    ]
    assert sorted(os.listdir(osp.join(
        out, 'JPEGImages'))) == [f'{n}.jpg' for n in names]
    assert sorted(os.listdir(osp.join(
        out, 'SegmentationClass'))) == [f'{n}.png' for n in names]
    assert sorted(os.listdir(osp.join(
        out, 'ImageSets', 'Segmentation'))) == ['train.txt', 'val.txt']
    assert Image.open(osp.join(out, 'JPEGImages',
                               'val_00000.jpg')).size == (32, 32)
    assert sorted(load_cls_labels(osp.join(out, 'cls_labels.json'))) == names
    assert tg.dataset_is_complete(out, num_train=2, num_val=1, size=32)
    # The CLI writes exactly what the module writes.
    ref = str(tmp_path / 'ref')
    tg.generate_dataset(ref, num_train=2, num_val=1, size=32, workers=1)
    assert _tree_bytes(out) == _tree_bytes(ref)

    second = subprocess.run(
        cmd, capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert second.returncode == 0, second.stderr
    assert 'skipping' in second.stdout
    assert 'HEAVY []' in second.stdout


# Loads a file of mmcv itself (pure-PyTorch point_sample.py, bypassing
# mmcv/ops/__init__.py, which needs the compiled extension): no module of
# this repo is loaded by file path there.
_FILE_LOADS_OF_THIRD_PARTY_FILES = [
    ('mmseg_wsss/utils/compat.py', 'spec_from_file_location'),
]


def test_no_module_loaded_by_file_path():
    # Tools and package modules import each other by name, never by path.
    patterns = ('spec_from_file_location', 'SourceFileLoader',
                'imp.load_source')
    hits = []
    for top in ('tools', 'mmseg_wsss'):
        for dirpath, _, files in os.walk(osp.join(REPO, top)):
            for name in sorted(files):
                if not name.endswith('.py'):
                    continue
                path = osp.join(dirpath, name)
                with open(path, encoding='utf-8') as f:
                    text = f.read()
                rel = osp.relpath(path, REPO).replace(os.sep, '/')
                hits += [(rel, p) for p in patterns
                         for _ in range(text.count(p))]
    assert sorted(hits) == _FILE_LOADS_OF_THIRD_PARTY_FILES
    with open(osp.join(REPO, 'mmseg_wsss', 'utils', 'compat.py')) as f:
        assert "osp.join(ops_dir, 'point_sample.py')" in f.read()
