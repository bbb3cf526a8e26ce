# Copyright (c) OpenMMLab. All rights reserved.
import hashlib
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
from conftest import num_classes_in
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


# ------------------------------------------------- the default domain ---

# sha256 of (img bytes, mask bytes, info JSON) of the first 8 train and val
# samples of the default domain at 96 px, seed 0, from the generator before
# the 'outdoor' domain existed: adding domains leaves the default unchanged.
# Like the dataset's bytes it assumes the same numpy / OpenCV builds.
SHAPES_FINGERPRINT = (
    '8abefd86b82c7078f4fca1919e4564285e950946e237eca8b40b969d55361069')


def test_default_domain_unchanged():
    digest = hashlib.sha256()
    for split in ('train', 'val'):
        for img, mask, info in tg.iter_samples(8, 96, 0, split):
            digest.update(img.tobytes())
            digest.update(mask.tobytes())
            digest.update(json.dumps(info, sort_keys=True).encode())
    assert digest.hexdigest() == SHAPES_FINGERPRINT
    assert tg.DEFAULT_DOMAIN == 'shapes' == tg.DOMAINS[0]
    assert tg.domain_classes() == tg.TOY_CLASSES
    # Its toy_meta.json params carry no 'domain' key (files stay as they
    # were; a missing key means the default).
    assert 'domain' not in tg._params(2, 1, 96, 0)
    assert tg._params(2, 1, 96, 0, 'outdoor')['domain'] == 'outdoor'
    ss = tg.sample_seed(0, 'train', 3)
    a = tg.generate_sample(ss, 96)
    b = tg.generate_sample(ss, 96, 'shapes')
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
    with pytest.raises(ValueError, match='unknown toy domain'):
        tg.generate_sample(ss, 96, 'nope')


# --------------------------------------------------- the outdoor domain ---

OUT = 'outdoor'
OUT_CLASSES = tg.OUTDOOR_CLASSES
OUT_NUM = len(OUT_CLASSES)
OUT_SMALL = dict(num_train=20, num_val=8, size=96, seed=3)
OUT_IDS = {name: k for k, name in enumerate(OUT_CLASSES)}


@pytest.fixture(scope='module')
def outdoor_samples():
    """60 in-memory 'outdoor' samples (seed 0): about 0.5 s."""
    return list(tg.iter_samples(60, size=96, seed=0, domain=OUT))


@pytest.fixture(scope='module')
def outdoor_stats(outdoor_samples):
    labels = [labels_from_mask(m, OUT_NUM) for _, m, _ in outdoor_samples]
    return tg.dataset_stats(labels, [i for _, _, i in outdoor_samples], 96,
                            OUT)


@pytest.fixture(scope='module')
def outdoor_dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy2') / 'toy2_ds')
    stats = tg.generate_dataset(root, workers=1, domain=OUT, **OUT_SMALL)
    return root, stats


def test_outdoor_classes():
    assert tg.DOMAINS == ('shapes', 'outdoor')
    assert tg.domain_classes(OUT) == OUT_CLASSES
    assert OUT_CLASSES[0] == 'background'
    assert OUT_NUM - 1 == tg.MIN_OUTDOOR_OBJECT_CLASSES == 6
    assert len(set(OUT_CLASSES)) == OUT_NUM
    assert not set(OUT_CLASSES[1:]) & set(tg.TOY_CLASSES[1:])
    assert len(set(tg.OUTDOOR_TEXTURES)) == OUT_NUM - 1
    # Every class but the thin one has a fixed outline; the pole's is drawn
    # per instance from its length and width.
    assert set(tg.OUTDOOR_SHAPES) | {tg.THIN_CLASS} == set(OUT_CLASSES[1:])
    assert set(tg.OUTDOOR_DRAW_ORDER) == set(OUT_CLASSES[1:])
    assert set(tg.OUTDOOR_INSTANCE_PROBS) == set(OUT_CLASSES[1:])
    assert tg.STRUCTURE_CLASSES == {'water': 'duck', 'fence': 'sheep'}
    assert set(tg.DISTRACTOR_CLASSES) < set(OUT_CLASSES[1:])
    assert max(tg.OUTDOOR_AREA_SAMPLE_RANGE[tg.SMALL_CLASS]) <= 0.04
    for probs in tg.OUTDOOR_INSTANCE_PROBS.values():
        assert abs(sum(probs) - 1.) < 1e-9


def test_outdoor_generate_sample_outputs():
    ss = tg.sample_seed(0, 'train', 7)
    img, mask, info = tg.generate_sample(ss, 96, OUT)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    assert mask.shape == (96, 96) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= set(range(OUT_NUM))
    json.dumps(info)  # serialisable
    for seed in (ss, np.random.Generator(np.random.PCG64(ss))):
        img2, mask2, info2 = tg.generate_sample(seed, 96, OUT)
        np.testing.assert_array_equal(img, img2)
        np.testing.assert_array_equal(mask, mask2)
        assert info == info2
    # Another index, or the other domain on the same stream: another image.
    assert not np.array_equal(
        img,
        tg.generate_sample(tg.sample_seed(0, 'val', 7), 96, OUT)[0])
    assert not np.array_equal(img, tg.generate_sample(ss, 96)[0])


def test_outdoor_masks_agree_with_info(outdoor_samples):
    size = 96
    for _, mask, info in outdoor_samples:
        objs = info['objects']
        assert objs
        visible = {}
        for o in objs:
            name = OUT_CLASSES[o['class_id']]
            visible[o['class_id']] = visible.get(o['class_id'],
                                                 0) + o['visible_area']
            assert o['visible_fraction'] >= tg.MIN_VISIBLE_FRACTION
            lo, hi = tg.OUTDOOR_AREA_RANGE[name]
            assert lo <= o['area_fraction'] <= hi, name
            assert ('width' in o) == (name == tg.THIN_CLASS)
            if name == tg.THIN_CLASS:
                lo, hi = tg.THIN_WIDTH_RANGE
                assert lo <= o['width'] <= hi
                assert o['full_area'] / o['width']**2 >= tg.MIN_THIN_ASPECT
        # The mask shows exactly the visible pixels of the instances, and
        # the labels are the classes of the instances.
        for k in range(1, OUT_NUM):
            assert int((mask == k).sum()) == visible.get(k, 0)
        assert labels_from_mask(mask, OUT_NUM) == sorted(visible)
        for k, area in visible.items():
            ids = [o for o in objs if o['class_id'] == k]
            if len(ids) == 1 and ids[0]['visible_fraction'] == 1.:
                assert area == ids[0]['full_area']
        # The structures and distractors are drawn, visible, background.
        assert (info['water_pixels'] >= 0.05 * size**2) == info['water']
        assert (info['waterline'] is not None) == info['water']
        assert info['fence'] in (None, 'pickets', 'mesh')
        assert (info['fence_pixels'] > 0) == (info['fence'] is not None)
        assert (info['fence_base'] is not None) == (info['fence'] is not None)
        if info['water'] and info['fence']:
            assert info['fence_base'] <= info['waterline']  # on the shore
        assert info['distractor'] in (None, ) + tg.DISTRACTOR_CLASSES
        assert (info['distractor_pixels'] > 0) == (
            info['distractor'] is not None)
        # A duck on the water: the waterline crosses its body.
        duck = mask == OUT_IDS['duck']
        if info['water'] and duck.any():
            rows = np.flatnonzero(duck.any(1))
            assert rows[0] < info['waterline'] < rows[-1]
        # A sheep at the fence: its feet (a lone, unoccluded sheep's lowest
        # row) stand just below the fence base.
        sheep = [o for o in objs if o['class_id'] == OUT_IDS['sheep']]
        if info['fence'] and len(sheep) == 1 and \
                sheep[0]['visible_fraction'] == 1.:
            low = np.flatnonzero((mask == OUT_IDS['sheep']).any(1))[-1]
            below = (low - info['fence_base']) / size
            lo, hi = tg.SHEEP_FEET_BELOW_FENCE
            assert lo - 0.02 <= below <= hi + 0.02


def test_outdoor_acceptance_statistics(outdoor_stats):
    st = outdoor_stats
    assert st['domain'] == OUT and st['num_images'] == 60
    assert st['num_object_classes'] == 6
    assert st['objects_per_image']['0'] == 0
    # Class frequencies. The dataset's criterion (rarest / most frequent
    # class >= 0.7, checked on its 2300 images in toy_meta.json) is looser
    # here: 60 images give each class about 19, +-4 by chance.
    counts = st['class_image_counts']
    assert sorted(counts) == sorted(OUT_CLASSES[1:])
    assert min(counts.values()) >= 10
    assert st['class_balance'] >= 0.5
    for name, area in st['object_area_fraction'].items():
        assert area['in_range'] == 1., name
    # The thin class: a few px wide, long.
    width = st['thin_width_px']
    assert tg.THIN_WIDTH_RANGE == (1.0, 5.0)
    assert 1.0 <= width['min'] and width['max'] <= 5.0
    assert width['mean'] <= 4.
    assert st['thin_aspect']['min'] >= 8.
    # Small objects (1-10% of the image) beside large ones.
    assert st['small_object_fraction'] >= 0.4
    assert st['images_with_small_object'] >= 0.4
    assert st['small_beside_large_fraction'] >= 0.1
    # Several instances of one class; several classes.
    assert st['multi_instance_fraction'] >= 0.4
    assert st['multi_object_fraction'] >= 0.4
    assert st['mean_instances_per_image'] > st['mean_objects_per_image']
    # Two classes bound to a background structure, which also appears
    # without them.
    for struct, cls_name in (('water', 'duck'), ('fence', 'sheep')):
        s = st['structures'][struct]
        assert s['cls'] == cls_name
        assert s['num_images_with_class'] >= 10
        assert s['with_class'] >= 0.7, struct
        assert 0.05 <= s['without_class'] <= 0.4, struct
        assert s['with_class'] - s['without_class'] >= 0.4
        assert s['pixel_fraction'] > 0.03
    # Background patches with a class's texture, in about half the images.
    assert 0.35 <= st['distractor_fraction'] <= 0.65
    assert sum(st['distractor_textures'].values()) == round(
        st['distractor_fraction'] * 60)
    assert st['clutter_fraction'] >= 0.5
    assert st['visible_fraction']['min'] >= 0.5
    # check_acceptance reads the domain from the stats.
    assert tg.check_acceptance(dict(st, class_balance=0.9)) == []


@pytest.mark.parametrize('key, value, expect', [
    ('num_object_classes', 5, 'object classes'),
    ('objects_per_image', {
        '0': 1
    }, 'without any object'),
    ('thin_width_px', dict(min=2., mean=3., max=6.), 'pole width'),
    ('thin_aspect', dict(min=5., mean=12.), 'length / width'),
    ('small_object_fraction', 0.2, 'small_object_fraction'),
    ('small_beside_large_fraction', 0.05, 'small_beside_large'),
    ('multi_instance_fraction', 0.2, 'multi_instance_fraction'),
    ('multi_object_fraction', 0.2, 'multi_object_fraction'),
    ('distractor_fraction', 0.1, 'distractor_fraction'),
    ('clutter_fraction', 0.1, 'clutter_fraction'),
    ('class_balance', 0.5, 'class_balance'),
])
def test_outdoor_check_acceptance_flags_each_criterion(outdoor_stats, key,
                                                       value, expect):
    good = dict(outdoor_stats, class_balance=0.9)
    assert tg.check_acceptance(good) == []
    (fail, ) = tg.check_acceptance(dict(good, **{key: value}))
    assert expect in fail


def test_outdoor_check_acceptance_structures_and_areas(outdoor_stats):
    good = dict(outdoor_stats, class_balance=0.9)
    for struct in ('water', 'fence'):
        for key, value in (('with_class', 0.5), ('without_class', 0.)):
            structures = {
                s: dict(v, **({
                    key: value
                } if s == struct else {}))
                for s, v in good['structures'].items()
            }
            (fail, ) = tg.check_acceptance(dict(good, structures=structures))
            assert fail.startswith(f'{struct} with')
    areas = dict(good['object_area_fraction'])
    areas['bird'] = dict(areas['bird'], in_range=0.9)
    (fail, ) = tg.check_acceptance(dict(good, object_area_fraction=areas))
    assert fail.startswith('bird area')


def test_outdoor_layout_and_loader(outdoor_dataset):
    root, stats = outdoor_dataset
    assert read_classes_file(osp.join(root,
                                      'classes.txt')) == list(OUT_CLASSES)
    names = []
    for split in ('train', 'val'):
        with open(osp.join(root, 'ImageSets', 'Segmentation',
                           f'{split}.txt')) as f:
            listed = f.read().splitlines()
        num = OUT_SMALL[f'num_{split}']
        assert listed == [f'{split}_{i:05d}' for i in range(num)]
        names += listed
    flat_palette = [c for rgb in default_palette(OUT_NUM) for c in rgb]
    derived = {}
    for n in names:
        img = Image.open(osp.join(root, 'JPEGImages', f'{n}.jpg'))
        assert img.format == 'JPEG' and img.mode == 'RGB'
        assert img.size == (96, 96)
        png = Image.open(osp.join(root, 'SegmentationClass', f'{n}.png'))
        assert png.format == 'PNG' and png.mode == 'P'
        assert png.getpalette()[:len(flat_palette)] == flat_palette
        derived[n] = labels_from_mask(np.array(png), OUT_NUM)
        assert derived[n]
    assert load_cls_labels(osp.join(root, 'cls_labels.json')) == derived

    meta = tg.read_meta(root)
    assert meta['params'] == dict(
        generator_version=tg.OUTDOOR_VERSION,
        jpeg_quality=95,
        classes=list(OUT_CLASSES),
        domain=OUT,
        **OUT_SMALL)
    assert meta['domain'] == OUT
    assert meta['structures'] == {'water': 'duck', 'fence': 'sheep'}
    assert meta['thin_class'] == 'pole' and meta['small_class'] == 'bird'
    assert sorted(meta['textures']) == sorted(OUT_CLASSES[1:])
    assert sorted(meta['images']) == sorted(names)
    assert meta['stats'] == stats
    disk = tg.stats_from_disk(root)
    for key in ('train', 'val', 'all'):
        assert disk[key] == stats[key]
        assert stats[key]['domain'] == OUT
    assert stats['acceptance_failures'] == tg.check_acceptance(stats['all'])
    assert tg.dataset_is_complete(root, domain=OUT, **OUT_SMALL)
    assert not tg.dataset_is_complete(root, **OUT_SMALL)  # other domain

    # The package's loader reads it like any VOC-layout folder.
    from mmseg_wsss.datasets import WSSSCustomDataset
    ds = WSSSCustomDataset(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=[])
    assert ds.metainfo['classes'] == OUT_CLASSES
    assert ds.num_classes == OUT_NUM and len(ds) == OUT_SMALL['num_train']
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        name = osp.splitext(osp.basename(info['img_path']))[0]
        hot = np.flatnonzero(info['gt_cls_label']) + 1
        assert hot.tolist() == derived[name]


def test_outdoor_configs_follow_classes_txt(outdoor_dataset):
    # tools/train.py CONFIG --data-root DIR: every num_classes of a toy
    # config follows the 7 classes of classes.txt.
    import argparse

    from mmseg_wsss.utils import iter_dataset_cfgs, load_tool_config
    root, _ = outdoor_dataset
    for config in ('cam_baseline/cam_resnet_toy.py',
                   'cam_baseline/cam_vit_toy.py',
                   'single_stage/single_stage_toy.py', 'toco/toco_toy.py',
                   'toco/toco-noctc_toy.py', 'dupl/dupl_toy.py',
                   'fsr/fsr_toy.py'):
        cfg = load_tool_config(
            argparse.Namespace(
                config=osp.join(REPO, 'configs', config),
                launcher='none',
                cfg_options=None,
                data_root=root,
                work_dir='work'))
        assert all(ds['data_root'] == root for ds in iter_dataset_cfgs(cfg))
        found = num_classes_in(cfg.model)
        assert found and set(found) == {OUT_NUM}, config


def test_outdoor_deterministic_and_worker_independent(outdoor_dataset,
                                                      tmp_path):
    root, _ = outdoor_dataset
    ref = _tree_bytes(root)
    again = str(tmp_path / 'again')
    tg.generate_dataset(again, workers=2, domain=OUT, **OUT_SMALL)
    assert _tree_bytes(again) == ref
    other = str(tmp_path / 'other')
    tg.generate_dataset(
        other, workers=1, domain=OUT, **dict(OUT_SMALL, seed=4))
    other_files = _tree_bytes(other)
    assert other_files.keys() == ref.keys()
    for name in ('JPEGImages/train_00000.jpg',
                 'SegmentationClass/val_00000.png', 'cls_labels.json'):
        assert other_files[name] != ref[name]


def test_generate_dataset_rejects_bad_params(tmp_path):
    root = str(tmp_path / 'ds')
    bad = [
        dict(num_train=0),
        dict(num_train=-3),
        dict(num_val=0),
        dict(num_val=-1),
        dict(size=tg.MIN_SIZES['shapes'] - 1),
        dict(size=tg.MIN_SIZES[OUT] - 1, domain=OUT),
        dict(domain='nope'),
    ]
    for kw in bad:
        params = dict(num_train=2, num_val=1, size=48, workers=1)
        params.update(kw)
        with pytest.raises(ValueError):
            tg.generate_dataset(root, **params)
    assert os.listdir(tmp_path) == []
    # The smallest sizes work.
    for domain, size in tg.MIN_SIZES.items():
        for _ in tg.iter_samples(6, size=size, seed=0, domain=domain):
            pass


@pytest.mark.parametrize('argv, message', [
    ('--num-train -3', 'argument --num-train: must be at least 1'),
    ('--num-train 0', 'argument --num-train: must be at least 1'),
    ('--num-val -1', 'argument --num-val: must be at least 1'),
    ('--num-val 0', 'argument --num-val: must be at least 1'),
    ('--num-train x', "argument --num-train: 'x' is not an integer"),
    ('--size 31', "--size: must be at least 32 for the 'shapes'"),
    ('--domain outdoor --size 47', "at least 48 for the 'outdoor'"),
    ('--domain nope', 'argument --domain: invalid choice'),
])
def test_cli_rejects_bad_input(tmp_path, argv, message):
    # A bad count or size used to write an empty or broken split silently.
    out = str(tmp_path / 'ds')
    script = osp.join(REPO, 'tools', 'generate_toy_dataset.py')
    run = subprocess.run(
        [sys.executable, script, out] + argv.split(),
        capture_output=True,
        text=True,
        timeout=120)
    assert run.returncode == 2, run.stdout
    assert message in run.stderr, run.stderr
    assert os.listdir(tmp_path) == []


def test_cli_domain_option(tmp_path):
    out = str(tmp_path / 'cli_toy2')
    script = osp.join(REPO, 'tools', 'generate_toy_dataset.py')
    cmd = [
        sys.executable, script, out, '--domain', 'outdoor', '--num-train', '2',
        '--num-val', '1', '--size', '48', '--workers', '1'
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert tg.dataset_is_complete(
        out, num_train=2, num_val=1, size=48, domain=OUT)
    ref = str(tmp_path / 'ref')
    tg.generate_dataset(
        ref, num_train=2, num_val=1, size=48, workers=1, domain=OUT)
    assert _tree_bytes(out) == _tree_bytes(ref)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and 'skipping' in again.stdout


def test_preview_grid():
    pic = tg.preview_grid(OUT, num=4, columns=2, size=48)
    assert pic.mode == 'RGB'
    # 2 rows of (image + mask), 2 columns, a legend row.
    assert pic.size == (2 * 50 + 2, 2 * 2 * 50 + 2 + 16)
    grid = np.array(pic)
    img, mask, _ = next(tg.iter_samples(1, 48, 0, 'train', OUT))
    np.testing.assert_array_equal(grid[2:50, 2:50], img)
    palette = np.array(default_palette(OUT_NUM), np.uint8)
    np.testing.assert_array_equal(grid[52:100, 2:50], palette[mask])
