# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/pseudo_label_quality.py."""
import json
import math
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import pseudo_label_quality as plq  # noqa: E402

sys.path.pop(0)
pytestmark = pytest.mark.usefixtures('one_thread')


def test_statistics_by_hand():
    # 2 x 4 image, classes 0 (bg), 1, 2; one pixel not annotated.
    gt = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 0]])
    label = torch.tensor([[0, 1, 1, 255], [0, 2, 0, 255]])
    hist = torch.zeros(3, 3, dtype=torch.long)
    counts = torch.zeros(4, dtype=torch.long)
    plq.accumulate(hist, counts, label, gt)
    # valid 7; gt fg 4 (1, 1, 2, 2); ignored 2 (a 1 and a 0), one on fg.
    assert counts.tolist() == [7, 4, 2, 1]
    assert hist.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    s = plq.summarize(hist, counts)
    # IoU: bg 1 / (2 + 2 - 1) = 1/3; class 1 1 / (1 + 2 - 1) = 1/2;
    # class 2 1 / (2 + 1 - 1) = 1/2.
    assert s['mIoU'] == pytest.approx(100 * (1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert s['fg'] == pytest.approx(100 * 3 / 7)
    assert s['bg'] == pytest.approx(100 * 2 / 7)
    assert s['ignore'] == pytest.approx(100 * 2 / 7)
    assert s['gt_fg'] == pytest.approx(100 * 4 / 7)
    assert s['obj_as_class'] == pytest.approx(100 * 2 / 4)
    assert s['obj_as_bg'] == pytest.approx(100 * 1 / 4)
    assert s['obj_ignored'] == pytest.approx(100 * 1 / 4)
    assert s['precision'] == pytest.approx(100 * 3 / 5)


def test_per_class_statistics_by_hand():
    # The image of test_statistics_by_hand.
    gt = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 0]])
    label = torch.tensor([[0, 1, 1, 255], [0, 2, 0, 255]])
    hist = torch.zeros(3, 3, dtype=torch.long)
    counts = torch.zeros(4, dtype=torch.long)
    ignored = torch.zeros(3, dtype=torch.long)
    plq.accumulate(hist, counts, label, gt, ignored)
    # Ignored: the class-1 pixel at (0, 3) and the background one at (1, 3).
    assert ignored.tolist() == [1, 1, 0]
    s = plq.summarize_per_class(hist, ignored, ['bg', 'a', 'b'])
    # bg: 3 pixels, 1 labelled bg, 1 labelled class 1, 1 ignored; the
    # pixels labelled bg are 2 (one is class 2).
    assert s['bg']['IoU'] == pytest.approx(100 / 3)
    assert s['bg']['precision'] == pytest.approx(100 / 2)
    assert s['bg']['as_class'] == pytest.approx(100 / 3)
    assert s['bg']['as_bg'] == pytest.approx(100 / 3)  # labelled an object
    assert s['bg']['ignored'] == pytest.approx(100 / 3)
    # class 1: 2 pixels, 1 right, 1 ignored; labelled 1 twice (one is bg).
    assert s['a']['precision'] == pytest.approx(50)
    assert s['a']['as_class'] == pytest.approx(50)
    assert s['a']['as_bg'] == 0 and s['a']['ignored'] == pytest.approx(50)
    # class 2: 2 pixels, 1 right, 1 labelled bg; its one label is right.
    assert s['b']['precision'] == 100
    assert s['b']['as_bg'] == pytest.approx(50)
    assert s['b']['IoU'] == pytest.approx(50)


def test_all_ignored_gives_nan_not_an_error():
    hist = torch.zeros(3, 3, dtype=torch.long)
    counts = torch.zeros(4, dtype=torch.long)
    plq.accumulate(hist, counts, torch.full((2, 2), 255), torch.ones(2, 2))
    s = plq.summarize(hist, counts)
    assert math.isnan(s['mIoU']) and math.isnan(s['precision'])
    assert s['ignore'] == 100 and s['obj_ignored'] == 100


@pytest.mark.parametrize('config', [
    'toco/toco_toy.py', 'dupl/dupl_toy.py', 'cam_baseline/cam_resnet_toy.py',
    'single_stage/single_stage_toy.py'
])
def test_cli_on_a_checkpoint(config, toy_root, tmp_path):
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)  # random weights, no init checkpoint
    ckpt = str(tmp_path / 'iter_600.pth')
    torch.save(dict(meta=dict(iter=600), state_dict=model.state_dict()), ckpt)
    out = str(tmp_path / 'stats.json')
    assert plq.main([
        osp.join(REPO_ROOT, 'configs', config), ckpt, '--data-root', toy_root,
        '--num-images', '3', '--out', out
    ]) == 0
    with open(out) as f:
        stats = json.load(f)
    assert stats['images'] == 3 and stats['iter'] == 600
    # Every annotated pixel is foreground, background or ignored.
    assert stats['fg'] + stats['bg'] + stats['ignore'] == pytest.approx(100)
    assert stats['obj_as_class'] <= 100 - stats['obj_as_bg']
    assert 0 < stats['gt_fg'] < 100
    # One row per class of the dataset, each split into its three shares.
    with open(osp.join(toy_root, 'classes.txt')) as f:
        assert list(stats['per_class']) == f.read().split()
    for row in stats['per_class'].values():
        if not math.isnan(row['as_class']):
            assert row['as_class'] + row['ignored'] <= 100 + 1e-6
