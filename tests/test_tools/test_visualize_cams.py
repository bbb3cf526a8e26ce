# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/visualize_cams.py and the segmentors' visual_maps.

Random-weight models of the four toy configs on the 48 px toy set: the
tool's grids (files, sizes, panels), the maps' shapes and ranges, and the
maps against the segmentors' own pseudo-label path.
"""
import importlib.util
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from PIL import Image

from mmseg_wsss.utils import set_data_root
from mmseg_wsss.visualization import grid_shape, grid_size, upscale_factor

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import visualize_cams as vis  # noqa: E402

sys.path.pop(0)
pytestmark = pytest.mark.usefixtures('one_thread')

HAS_CRF = importlib.util.find_spec('pydensecrf') is not None
# Config: (first-row titles between image and prediction, heat rows).
CASES = {
    'cam_baseline/cam_resnet_toy.py':
    (['CAM label'] + (['after CRF'] if HAS_CRF else []), ['CAM']),
    'toco/toco_toy.py': (['label before PAR',
                          'label after PAR'], ['CAM', 'aux CAM']),
    'dupl/dupl_toy.py': (['label before PAR',
                          'label after PAR'], ['CAM', 'aux CAM']),
    'single_stage/single_stage_toy.py':
    (['label before PAMR', 'label after PAMR'], ['mask']),
}
ITER = 600  # the toy ToCo / DuPL segmentation losses are on (> 300)


def _checkpoint(config, tmp_path, iteration=ITER):
    """A random-weight checkpoint of a toy config (no init checkpoint)."""
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / f'iter_{iteration}.pth')
    torch.save(
        dict(meta=dict(iter=iteration), state_dict=model.state_dict()), ckpt)
    return cfg, model, ckpt


def _batch(cfg, model, toy_root, num=2):
    """The first ``num`` val images (48 px) through the preprocessor."""
    from mmseg.registry import DATASETS
    cfg = cfg.copy()
    set_data_root(cfg, toy_root)
    dataset = DATASETS.build(vis.split_dataset_cfg(cfg, 'val'))
    batch = pseudo_collate([dataset[i] for i in range(num)])
    data = model.data_preprocessor(batch, False)
    return data['inputs'], data['data_samples']


@pytest.mark.parametrize('config', sorted(CASES))
def test_grids_of_each_toy_config(config, toy_root, tmp_path):
    cfg, _, ckpt = _checkpoint(config, tmp_path)
    set_data_root(cfg, toy_root)
    out = str(tmp_path / 'out')
    written = vis.visualize(cfg, ckpt, out, split='val', num=2)
    assert sorted(os.listdir(out)) == ['val_00000.png', 'val_00001.png']
    labels, heat = CASES[config]
    scale = upscale_factor(48, 48, 192)
    assert scale == 4
    for item in written:
        titles = item['titles']
        # DuPL: 'prediction (mean)', its test_cfg.branch.
        assert titles[0][-2].startswith('prediction')
        assert titles[0][:-2] == ['image'] + labels
        assert titles[0][-1] == 'ground truth'
        # One heat row per map, a panel per present (ground-truth) class.
        assert [row[0].split(':')[0] for row in titles[1:]] == heat
        assert len({len(row) for row in titles[1:]}) == 1
        # The PNG has the size of the layout: columns of 192 px panels.
        with Image.open(item['path']) as png:
            assert png.size[::-1] + (3, ) == item['shape']
        rows = [[None] * len(row) for row in titles]
        nrows, ncols = grid_shape(rows)
        assert item['shape'][:2] == grid_size((192, 192), (nrows, ncols),
                                              len(item['legend']))
        assert item['shape'][1] == ncols * (192 + 8) + 8


def test_cli_indices_branch_and_no_masks(toy_root, tmp_path):
    """--indices picks images, --branch a DuPL student; without the masks
    folder the ground-truth panel is left out."""
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_root, root)
    shutil.rmtree(osp.join(root, 'SegmentationClass'))
    _, _, ckpt = _checkpoint('dupl/dupl_toy.py', tmp_path, iteration=1500)
    out = str(tmp_path / 'out')
    assert vis.main([
        osp.join(REPO_ROOT, 'configs', 'dupl',
                 'dupl_toy.py'), ckpt, '--data-root', root, '--split', 'val',
        '--indices', '3', '--branch', '2', '--min-size', '96', '--out', out
    ]) == 0
    assert os.listdir(out) == ['val_00003.png']
    with Image.open(osp.join(out, 'val_00003.png')) as png:
        # 96 px panels; filtering is on at 1500: its label is drawn.
        # image, 2 labels, filtered label, prediction: 5 columns.
        assert png.size[0] == 5 * (96 + 8) + 8


@pytest.mark.parametrize('config', sorted(CASES))
def test_visual_maps_shapes_and_ranges(config, toy_root, tmp_path):
    cfg, model, _ = _checkpoint(config, tmp_path)
    model.eval()
    inputs, samples = _batch(cfg, model, toy_root)
    maps = model.visual_maps(inputs, samples, ITER)
    B, _, H, W = inputs.shape
    C = model.num_classes
    heat = [k for k in ('cam', 'aux_cam') if k in maps]
    assert heat == (['cam', 'aux_cam']
                    if 'toco' in config or 'dupl' in config else ['cam'])
    for key in heat:
        assert maps[key].shape == (B, C - 1, H, W)
        assert maps[key].min() >= 0 and maps[key].max() <= 1
    gt = torch.stack([s.gt_cls_label.data for s in samples]) > 0
    for key in set(maps) - set(heat):
        label = maps[key]
        assert label.shape == (B, H, W) and label.dtype == torch.long
        for b in range(B):
            # Only background, ignore and the image's classes.
            allowed = {0, 255} | set((gt[b].nonzero().flatten() + 1).tolist())
            assert set(label[b].unique().tolist()) <= allowed, key
    assert set(maps) - set(heat) <= set(model.VISUAL_MAP_TITLES)


def test_maps_are_the_pseudo_labels(toy_root, tmp_path):
    """'label_refined' (CAM: 'label_raw') is the segmentor's own
    pseudo_labels() at an iteration where its segmentation loss is on."""
    for config, it in (('cam_baseline/cam_resnet_toy.py',
                        None), ('toco/toco_toy.py', ITER),
                       ('single_stage/single_stage_toy.py', 700)):
        cfg, model, _ = _checkpoint(config, tmp_path)
        model.eval()
        inputs, samples = _batch(cfg, model, toy_root)
        maps = model.visual_maps(inputs, samples, it)
        key = 'label_raw' if 'cam_resnet' in config else 'label_refined'
        expected = model.pseudo_labels(inputs, samples, it)
        assert (expected != 255).any()
        assert torch.equal(maps[key], expected), config


def test_dupl_maps_are_each_students_pseudo_labels(toy_root, tmp_path):
    cfg, model, _ = _checkpoint('dupl/dupl_toy.py', tmp_path)
    model.eval()
    inputs, samples = _batch(cfg, model, toy_root)
    # 600: cross supervision without filtering; 1500: filtering on.
    for it, key in ((ITER, 'label_refined'), (1500, 'label_filtered')):
        expected = model.pseudo_labels(inputs, samples, it)
        for branch in (1, 2):
            maps = model.visual_maps(inputs, samples, it, branch=branch)
            assert ('label_filtered' in maps) == (it == 1500)
            assert torch.equal(maps[key], expected[branch - 1])
    # The dynamic threshold is the iteration's: later, lower.
    early = model.visual_maps(inputs, samples, 301)['label_raw']
    late = model.visual_maps(inputs, samples, 3000)['label_raw']
    assert ((late > 0) & (late < 255)).sum() >= ((early > 0) &
                                                 (early < 255)).sum()
    with pytest.raises(ValueError, match='branch'):
        model.visual_maps(inputs, samples, branch=3)


def test_toco_raw_label_is_the_thresholded_cam(toy_root, tmp_path):
    cfg, model, _ = _checkpoint('toco/toco_toy.py', tmp_path)
    model.eval()
    inputs, samples = _batch(cfg, model, toy_root)
    maps = model.visual_maps(inputs, samples, ITER)
    present = torch.stack([s.gt_cls_label.data for s in samples])
    # Absent classes take no part.
    cam = maps['cam'] * present[:, :, None, None]
    label = maps['label_raw']
    value = cam.gather(1, (label.clamp(1, cam.shape[1]) - 1)[:, None])[:, 0]
    fg = (label > 0) & (label < 255)
    assert (value[fg] > model.train_cfg.high_thr).all()
    assert (cam.amax(1)[label == 0] <= model.train_cfg.low_thr + 1e-6).all()


def test_not_implemented_names_the_class():
    from mmseg_wsss.models.segmentors.wsss_segmentor import WSSSSegmentor

    class NoPictures(WSSSSegmentor):

        def _pseudo_labels(self, inputs, data_samples):
            return self.ignore_labels(inputs)

        def inference(self, inputs, data_samples=None):
            return inputs

        def loss(self, inputs, data_samples):
            return dict()

        def extract_feat(self, inputs):
            return inputs

        def _forward(self, inputs, data_samples=None):
            return inputs

    with pytest.raises(NotImplementedError, match='NoPictures'):
        NoPictures().visual_maps(torch.zeros(1, 3, 8, 8), [])


def test_grid_of_one_image_by_hand():
    """draw_cam_grid on plain arrays: layout and legend."""
    from mmseg_wsss.visualization import (cam_grid_rows, draw_cam_grid,
                                          legend_entries)
    image = np.random.default_rng(0).random((20, 30, 3))
    cam = np.zeros((3, 20, 30))
    cam[1, 5:10, 5:10] = 1.
    label = np.zeros((20, 30), np.int64)
    label[5:10, 5:10] = 2
    label[0] = 255
    maps = dict(cam=cam, label_raw=label, pred=label)
    names = ['background', 'a', 'b', 'c']
    palette = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    rows = cam_grid_rows(
        image,
        maps,
        names,
        palette, [2, 3],
        titles=dict(cam='CAM', pred='prediction'))
    assert [[p.title for p in row]
            for row in rows] == [['image', 'label_raw', 'prediction'],
                                 ['CAM: b', 'CAM: c']]
    assert rows[0][1].image[7, 7].tolist() == [0, 128, 0]
    assert rows[0][1].image[0, 0].tolist() == [255, 255, 255]
    assert legend_entries(maps, [2, 3]) == [0, 2, 3, 255]
    grid = draw_cam_grid(image, maps, names, palette, [2, 3], min_size=64)
    # 30 px wide panels upscaled x3 (90 x 60); 3 columns, 2 rows.
    assert grid.dtype == np.uint8
    assert grid.shape == grid_size((60, 90), (2, 3), 4, header=False) + (3, )
