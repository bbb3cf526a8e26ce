# Copyright (c) OpenMMLab. All rights reserved.
"""tools/make_pseudo_labels.py: export, quality, resume, CAMs, errors.

The tool runs in this process (its ``main(argv)``) on the 8 val images of
the toy dataset, with random-weight checkpoints: a Runner per run, no
interpreter start-up.
"""
import builtins
import filecmp
import importlib.util
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from conftest import REPO_ROOT
from mmseg_wsss.utils.config_utils import dataset_classes
from mmseg_wsss_light.voc_layout import default_palette

pytestmark = pytest.mark.usefixtures('one_thread')

CAM = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_resnet_toy.py')
TOCO = osp.join(REPO_ROOT, 'configs', 'toco', 'toco-noctc_toy.py')
FAST = [
    'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'
]


def _tool(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mpl = _tool('wsss_tools_make_pseudo_labels',
            osp.join(REPO_ROOT, 'tools', 'make_pseudo_labels.py'))


def _checkpoint(config, path):
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)  # random weights
    torch.save(dict(meta=dict(iter=600), state_dict=model.state_dict()), path)
    return path


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('mpl_ckpt')
    return dict(
        cam=_checkpoint(CAM, str(tmp / 'cam.pth')),
        toco=_checkpoint(TOCO, str(tmp / 'toco.pth')))


def _export(config, ckpt, out, toy_root, *extra, options=()):
    argv = [
        config, ckpt, '--out', out, '--split', 'val', '--data-root', toy_root,
        '--work-dir',
        osp.dirname(out) + '/work', *extra, '--cfg-options', *FAST, *options
    ]
    assert mpl.main(argv) == 0


def _val_ids(toy_root):
    with open(osp.join(toy_root, 'ImageSets', 'Segmentation', 'val.txt')) as f:
        return [line.strip() for line in f if line.strip()]


def _miou(pred_dir, toy_root, names, num_classes):
    """mmseg's mIoU, by hand: per class |P & G| / |P | G| over annotated
    pixels, averaged over the classes that occur."""
    inter, union = np.zeros(num_classes), np.zeros(num_classes)
    for name in names:
        pred = np.array(Image.open(osp.join(pred_dir, name + '.png')))
        gt = np.array(
            Image.open(osp.join(toy_root, 'SegmentationClass', name + '.png')))
        valid = gt != 255
        for c in range(num_classes):
            p, g = (pred == c) & valid, (gt == c) & valid
            inter[c] += (p & g).sum()
            union[c] += (p | g).sum()
    return 100 * np.mean(inter[union > 0] / union[union > 0])


@pytest.fixture(scope='module')
def cam_export(ckpts, toy_root, tmp_path_factory):
    """A clean CAM-baseline export of val, with the masks opened during
    the inference and during the scoring."""
    out = str(tmp_path_factory.mktemp('mpl_cam') / 'labels')
    opened = dict(inference=[], scoring=[])
    phase = ['inference']
    real_open, real_report = builtins.open, mpl.report_quality

    def spy_open(file, *args, **kwargs):
        if 'SegmentationClass' in str(file):
            opened[phase[0]].append(str(file))
        return real_open(file, *args, **kwargs)

    def report(*args, **kwargs):
        phase[0] = 'scoring'
        return real_report(*args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(builtins, 'open', spy_open)  # PIL and mmengine use it
    mp.setattr(mpl, 'report_quality', report)
    try:
        _export(CAM, ckpts['cam'], out, toy_root)
    finally:
        mp.undo()
    return out, opened


def test_export_pngs_and_quality(cam_export, ckpts, toy_root, tmp_path,
                                 monkeypatch):
    out, opened = cam_export
    names = _val_ids(toy_root)
    assert sorted(os.listdir(out)) == sorted(n + '.png' for n in names)
    classes = dataset_classes(
        dict(type='WSSSCustomDataset', data_root=toy_root))
    palette = [c for rgb in default_palette(256) for c in rgb]
    for name in names:
        png = Image.open(osp.join(out, name + '.png'))
        img = Image.open(osp.join(toy_root, 'JPEGImages', name + '.jpg'))
        assert png.mode == 'P' and png.size == img.size
        assert png.getpalette() == palette  # VOC colours, 255 included
        values = np.unique(np.array(png))
        assert values.min() >= 0 and values.max() < len(classes)
    # The inference read no mask; the scoring read each once.
    assert opened['inference'] == []
    assert sorted(map(osp.basename,
                      opened['scoring'])) == sorted(n + '.png' for n in names)

    with open(out + '.json') as f:
        stats = json.load(f)
    assert stats['images'] == len(names) and stats['split'] == 'val'
    assert stats['mIoU'] == pytest.approx(
        _miou(out, toy_root, names, len(classes)), abs=1e-3)
    assert list(stats['per_class']) == classes
    # No ignore in a CAM baseline's labels: overall precision = recall.
    assert stats['ignored'] == 0
    assert stats['precision'] == pytest.approx(stats['recall'])

    # The same labels as tools/test.py --pseudo-labels scores.
    tools_test = _tool('wsss_tools_test_mpl',
                       osp.join(REPO_ROOT, 'tools', 'test.py'))
    work = str(tmp_path / 'test')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', CAM, ckpts['cam'], '--pseudo-labels', 'val', '--data-root',
        toy_root, '--work-dir', work, '--cfg-options', *FAST
    ])
    tools_test.main()
    with open(osp.join(work, 'metrics.json')) as f:
        assert json.load(f)['mIoU'] == pytest.approx(stats['mIoU'], abs=6e-3)


def test_crf_labels_are_those_tools_test_scores(cam_export, ckpts, toy_root,
                                                tmp_path, monkeypatch):
    # --crf: the PNGs hold the CRF's labels (WSSSTestLoop, one worker
    # process overlapping inference), as tools/test.py --out writes them.
    out = str(tmp_path / 'labels')
    _export(CAM, ckpts['cam'], out, toy_root, '--crf', '--crf-workers', '1')
    tools_test = _tool('wsss_tools_test_mpl_crf',
                       osp.join(REPO_ROOT, 'tools', 'test.py'))
    test_out = str(tmp_path / 'test_out')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', CAM, ckpts['cam'], '--pseudo-labels', 'val', '--crf',
        '--crf-workers', '1', '--data-root', toy_root, '--work-dir',
        str(tmp_path / 'test'), '--out', test_out, '--cfg-options', *FAST
    ])
    tools_test.main()
    for name in _val_ids(toy_root):
        ours = np.array(Image.open(osp.join(out, name + '.png')))
        theirs = np.array(Image.open(osp.join(test_out, name + '.png')))
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
    # ... which are not the labels without the CRF.
    clean, _ = cam_export
    assert any(
        not filecmp.cmp(osp.join(out, n), osp.join(clean, n), shallow=False)
        for n in os.listdir(clean))


def test_restart_writes_only_the_rest(cam_export, ckpts, toy_root, tmp_path,
                                      monkeypatch):
    # A run killed after 3 images: their PNGs, a half-written temporary.
    clean, _ = cam_export
    names = sorted(_val_ids(toy_root))
    out = str(tmp_path / 'labels')
    os.makedirs(out)
    for name in names[:3]:
        shutil.copy2(osp.join(clean, name + '.png'), out)
    stale = osp.join(out, f'.{names[3]}.png.4242.0badc0de.tmp')
    with open(stale, 'wb') as f:
        f.write(b'\x89PNG half')
    before = {n: os.stat(osp.join(out, n + '.png')) for n in names[:3]}

    written = []
    save = mpl.save_label_png
    monkeypatch.setattr(
        mpl, 'save_label_png',
        lambda path, *a: written.append(path) or save(path, *a))
    _export(CAM, ckpts['cam'], out, toy_root)

    # Only the rest was inferred and written; the done files are untouched.
    assert sorted(map(osp.basename,
                      written)) == [n + '.png' for n in names[3:]]
    for name, st in before.items():
        now = os.stat(osp.join(out, name + '.png'))
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert not osp.exists(stale)
    # Byte-identical to the uninterrupted run.
    assert sorted(os.listdir(out)) == sorted(os.listdir(clean))
    match, mismatch, errors = filecmp.cmpfiles(
        out, clean, os.listdir(clean), shallow=False)
    assert mismatch == [] and errors == []
    # The quality covers all PNGs, also those of the killed run.
    with open(out + '.json') as f, open(clean + '.json') as g:
        assert json.load(f) == json.load(g)

    # Nothing left to do: no image is inferred, the figures are the same.
    written.clear()
    _export(CAM, ckpts['cam'], out, toy_root)
    assert written == []
    with open(out + '.json') as f, open(clean + '.json') as g:
        assert json.load(f) == json.load(g)


def test_toco_seg_and_cams(ckpts, toy_root, tmp_path):
    names = _val_ids(toy_root)
    outs = {}
    for mode, extra in (('seg', ()), ('cam', ('--from-cams', ))):
        outs[mode] = str(tmp_path / mode)
        _export(TOCO, ckpts['toco'], outs[mode], toy_root, *extra)
        assert sorted(os.listdir(outs[mode])) == sorted(n + '.png'
                                                        for n in names)
        with open(outs[mode] + '.json') as f:
            assert 0 <= json.load(f)['mIoU'] <= 100
    # The CAMs are another prediction than the LargeFOV head's.
    assert any(not filecmp.cmp(
        osp.join(outs['seg'], n + '.png'),
        osp.join(outs['cam'], n + '.png'),
        shallow=False) for n in names)


def test_crf_and_cam_output_configs(toy_root):
    args = mpl.parse_args([CAM, 'x.pth', '--out', 'o', '--crf'])
    cfg = Config.fromfile(CAM)
    cfg.test_dataloader.dataset.data_root = toy_root  # the split file exists
    mpl.prepare_config(cfg, args)
    types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert 'LoadAnnotations' not in types  # the masks are never read
    assert cfg.test_dataloader.dataset.ann_file.endswith('/train.txt')
    assert cfg.model.test_cfg.cls_source == 'gt'
    assert cfg.model.test_cfg.crf.enable is True
    assert cfg.test_cfg.type == 'WSSSTestLoop'
    assert cfg.test_dataloader.sampler == dict(
        type='SkipExportedSampler', out_dir='o')
    assert cfg.custom_hooks[-1] == dict(
        type='PseudoLabelWriterHook', out_dir='o')

    # --from-cams: a CAM baseline stays, ToCo / DuPL switch to their CAMs
    # (and the CAM-label CRF), 1Stage has none.
    cfg = Config.fromfile(CAM)
    test_cfg = cfg.model.test_cfg.to_dict()
    mpl.use_cam_output(cfg)
    assert cfg.model.test_cfg.to_dict() == test_cfg
    for config in (TOCO, 'dupl/dupl_toy.py'):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
        mpl.use_cam_output(cfg)
        assert cfg.model.test_cfg.output == 'cam'
        assert cfg.model.test_cfg.crf.prob_mode == 'normalize'
        assert cfg.model.test_cfg.crf.preset == 'toco_cam'
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'single_stage', 'single_stage_toy.py'))
    with pytest.raises(ValueError, match='SingleStageSegmentor has no CAM'):
        mpl.use_cam_output(cfg)


def test_clear_errors(ckpts, toy_root, tmp_path):
    out = str(tmp_path / 'o')
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        _export(CAM, str(tmp_path / 'none.pth'), out, toy_root)
    split = osp.join('ImageSets', 'Segmentation', 'nosuch.txt')
    with pytest.raises(FileNotFoundError, match=split):
        mpl.main([
            CAM, ckpts['cam'], '--out', out, '--split', 'nosuch',
            '--data-root', toy_root
        ])
    with pytest.raises(ValueError, match='model.test_cfg.crf'):
        _export(
            CAM,
            ckpts['cam'],
            out,
            toy_root,
            '--crf',
            options=['model.test_cfg.crf=None'])
    assert not osp.exists(out)


def test_split_without_masks(ckpts, toy_root, tmp_path, capsys, monkeypatch):
    # The split's masks are missing: the labels are exported, the quality
    # is not computed, and no mask file is ever opened.
    out = str(tmp_path / 'labels')
    opened = []
    real_open = builtins.open

    def spy_open(file, *args, **kwargs):
        if 'NoMasks' in str(file):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, 'open', spy_open)
    _export(
        CAM,
        ckpts['cam'],
        out,
        toy_root,
        options=['test_dataloader.dataset.data_prefix.seg_map_path=NoMasks'])
    assert len(os.listdir(out)) == len(_val_ids(toy_root))
    assert 'have no ground-truth mask' in capsys.readouterr().out
    assert opened == [] and not osp.exists(out + '.json')


def test_sampler_shards_what_is_left(tmp_path, monkeypatch):
    """Two ranks: rank 0 lists the folder once, both shard the same list
    (padded as mmengine's DefaultSampler)."""

    class Dataset:

        def __len__(self):
            return 5

        def get_data_info(self, i):
            return dict(img_path=f'/data/JPEGImages/im{i}.jpg')

    out = str(tmp_path / 'o')
    os.makedirs(out)
    open(osp.join(out, 'im1.png'), 'w').close()
    shards = {}
    for rank in (0, 1):
        monkeypatch.setattr(mpl, 'get_dist_info', lambda: (rank, 2))
        monkeypatch.setattr(mpl, 'broadcast_object_list',
                            lambda data: data.__setitem__(0, [0, 2, 3, 4]))
        sampler = mpl.SkipExportedSampler(Dataset(), out)
        shards[rank] = list(sampler)
        assert len(sampler) == 2
    assert shards == {0: [0, 3], 1: [2, 4]}
    # rank 0's own listing
    monkeypatch.setattr(mpl, 'get_dist_info', lambda: (0, 1))
    assert list(mpl.SkipExportedSampler(Dataset(), out)) == [0, 2, 3, 4]
