# Copyright (c) OpenMMLab. All rights reserved.
"""Training never reads pixel labels: noise masks give the same loss; a
second stage reads only its pseudo labels."""
import glob
import os
import random
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import MODELS
from PIL import Image

from conftest import REPO_ROOT, write_fake_pseudo_labels
from mmseg_wsss.utils import set_data_root

CONFIG = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_resnet_toy.py')
SECOND_STAGE = osp.join(REPO_ROOT, 'configs', 'second_stage',
                        'deeplabv2_toy.py')
# Fully supervised on the true masks on purpose: the upper bound of the toy
# second stage, not a WSSS config.
ORACLES = ('deeplabv2_r18-tiny_1xb16-3k_toy-gt-96x96.py',
           'deeplabv2_toy_oracle.py')


def _is_short_name(path: str) -> bool:
    """A short-name config only inherits a full-name one."""
    with open(path) as f:
        return f.readline().startswith('# Short name of')


CONFIGS = sorted(
    c for c in glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py'))
    if '_base_' not in c and osp.basename(c) not in ORACLES
    and not _is_short_name(c))


def _first_loss(cfg, key='loss_cls'):
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False, batch_size=4)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    # The random transforms draw from the global generators.
    random.seed(0)
    np.random.seed(0)
    batch = next(iter(loader))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(batch, True)
    return model(**data, mode='loss')[key].item(), batch


def test_loss_identical_with_noise_masks(toy_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_root, root)
    assert osp.isfile(osp.join(root, 'cls_labels.json'))
    cfg = Config.fromfile(CONFIG)
    set_data_root(cfg, root)
    loss_clean, batch = _first_loss(cfg)
    assert all('seg_map_path' not in s.metainfo
               for s in batch['data_samples'])

    seg_dir = osp.join(root, 'SegmentationClass')
    rng = np.random.default_rng(0)
    for name in os.listdir(seg_dir):
        path = osp.join(seg_dir, name)
        old = np.asarray(Image.open(path))
        noise = rng.integers(0, 256, old.shape, dtype=np.uint8)
        assert not np.array_equal(noise, old)
        Image.fromarray(noise).save(path)
    loss_noise, _ = _first_loss(cfg)
    assert loss_clean == loss_noise


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_training_datasets_carry_no_mask_path(config):
    """Every training dataset of a WSSS config (a second stage's: the one
    its PseudoLabelDataset wraps) is built with ``with_seg_map=False``, so
    its samples have no mask path at all."""
    cfg = Config.fromfile(config)
    ds = cfg.train_dataloader.dataset
    if osp.basename(osp.dirname(config)) == 'second_stage':
        assert ds.type == 'PseudoLabelDataset', config
        ds = ds.dataset
    assert ds.get('with_seg_map') is False, config


def test_second_stage_reads_only_pseudo_labels(toy_root, tmp_path):
    """The toy second stage trains on the pseudo labels: every training
    sample's mask path is in the pseudo-label folder, and the loss is the
    same after the real masks are deleted."""
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_root, root)
    assert osp.isfile(osp.join(root, 'cls_labels.json'))
    pseudo = str(tmp_path / 'pseudo')
    write_fake_pseudo_labels(root, pseudo)
    cfg = Config.fromfile(SECOND_STAGE)
    set_data_root(cfg, root)
    cfg.train_dataloader.dataset.pseudo_label_dir = pseudo
    loss, batch = _first_loss(cfg, 'decode.loss_ce')
    for sample in batch['data_samples']:
        path = sample.metainfo['seg_map_path']
        assert osp.dirname(path) == pseudo, path
        # The packed label is the pseudo label (no resize: nearest keeps
        # the label values; only its classes, flipped or cropped).
        values = set(sample.gt_sem_seg.data.unique().tolist())
        assert values <= set(np.unique(np.asarray(Image.open(path))))

    shutil.rmtree(osp.join(root, 'SegmentationClass'))
    loss_without_masks, _ = _first_loss(cfg, 'decode.loss_ce')
    assert loss_without_masks == loss
