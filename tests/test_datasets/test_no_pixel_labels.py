# Copyright (c) OpenMMLab. All rights reserved.
"""Training never reads pixel labels: noise masks give the same loss."""
import os
import random
import os.path as osp
import shutil

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import MODELS
from PIL import Image

from conftest import REPO_ROOT
from mmseg_wsss.utils import set_data_root

CONFIG = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_resnet_toy.py')


def _first_loss(cfg):
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
    return model(**data, mode='loss')['loss_cls'].item(), batch


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
