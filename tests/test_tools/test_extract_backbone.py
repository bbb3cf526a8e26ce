# Copyright (c) OpenMMLab. All rights reserved.
"""tools/model_converters/extract_backbone.py and the toy ViT configs'
``Pretrained`` init (the toy stand-in for DeiT-B)."""
import os.path as osp
import sys

import pytest
import torch
from mmengine import Config

from conftest import REPO_ROOT, assert_loaded_from
from mmseg_wsss.registry import MODELS

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'model_converters'))
from extract_backbone import extract_prefix  # noqa: E402

sys.path.pop(0)

TOY_VIT_CONFIGS = [
    'configs/cam_baseline/cam_vit_toy.py', 'configs/toco/toco_toy.py',
    'configs/dupl/dupl_toy.py'
]


def test_extract_prefix():
    a, b, c = torch.zeros(1), torch.ones(2), torch.full((3, ), 2.)
    out = extract_prefix({'backbone.x': a, 'backbone.y.z': b, 'head.w': c})
    assert list(out) == ['x', 'y.z']
    assert out['x'] is a and out['y.z'] is b
    assert list(extract_prefix({'s1.backbone.x': a}, 's1.backbone.')) == ['x']
    with pytest.raises(KeyError, match='top-level modules'):
        extract_prefix({'head.w': c})


def _backbone_cfg(config):
    model = Config.fromfile(osp.join(REPO_ROOT, config)).model
    return model.network.backbone if 'network' in model else model.backbone


@pytest.mark.parametrize('config', TOY_VIT_CONFIGS)
def test_toy_vit_configs_start_from_the_toy_pretraining(config):
    """All three toy ViT configs start from the same checkpoint, with the
    position embeddings frozen, as their VOC configs start from DeiT-B."""
    cfg = _backbone_cfg(config)
    assert cfg.init_cfg == dict(
        type='Pretrained',
        checkpoint='pretrain/vit-tiny-p8_toy-pretrain.pth')
    assert cfg.freeze_pos_embed
    pretrain = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'cam_baseline',
                 'cam_vit-tiny-p8_1xb16-3k_toy-pretrain-96x96.py'))
    # Pretraining: the same network from scratch on another toy set.
    assert pretrain.model.backbone.init_cfg is None
    assert pretrain.train_dataloader.dataset.data_root == 'data/toy_pretrain'
    for key in ('img_size', 'patch_size', 'embed_dims', 'num_layers',
                'num_heads'):
        assert pretrain.model.backbone[key] == cfg[key]


def test_pretrained_init_loads_every_extracted_tensor(toy_vit_pretrain):
    cfg = _backbone_cfg('configs/toco/toco_toy.py')
    cfg.init_cfg.checkpoint = toy_vit_pretrain
    torch.manual_seed(1)  # other random weights than the checkpoint's
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    assert_loaded_from(backbone, toy_vit_pretrain)
    assert not backbone.pos_embed.requires_grad


def test_missing_pretrained_checkpoint_says_how_to_make_it(tmp_path):
    cfg = _backbone_cfg('configs/cam_baseline/cam_vit_toy.py')
    cfg.init_cfg.checkpoint = str(tmp_path / 'missing.pth')
    backbone = MODELS.build(cfg)
    with pytest.raises(FileNotFoundError, match='pretrain_toy_vit.sh'):
        backbone.init_weights()
