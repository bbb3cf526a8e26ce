# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
import sys

import pytest

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import mmseg_wsss  # noqa: E402,F401


def assert_loaded_from(module, checkpoint: str) -> None:
    """``module``'s state dict is exactly ``checkpoint``'s: the same keys,
    every tensor equal (an init_cfg Pretrained really loaded)."""
    import torch
    saved = torch.load(checkpoint, weights_only=True)['state_dict']
    state = module.state_dict()
    assert set(saved) == set(state)
    for key, value in saved.items():
        assert torch.equal(state[key], value), key


def num_classes_in(node) -> list:
    """Every ``num_classes`` value in a (model) config, depth first."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes':
                found.append(value)
            else:
                found += num_classes_in(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found += num_classes_in(value)
    return found


def write_fake_pseudo_labels(data_root: str,
                             out_dir: str,
                             split: str = 'train',
                             seed: int = 0) -> list:
    """Fake pseudo labels as tools/make_pseudo_labels.py writes them: one
    palette PNG per image of ``split`` (``out_dir/<name>.png``, the image's
    size), random 8 x 8 blocks of class ids (``classes.txt``) with about
    10 % ignore (255), unrelated to the real masks.

    Returns:
        list[str]: The image names of the split.
    """
    import os

    import numpy as np
    from PIL import Image

    from mmseg_wsss.datasets import default_palette, read_classes_file
    num_classes = len(read_classes_file(osp.join(data_root, 'classes.txt')))
    split_file = osp.join(data_root, 'ImageSets', 'Segmentation',
                          f'{split}.txt')
    with open(split_file) as f:
        names = [line.strip() for line in f if line.strip()]
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = np.asarray(default_palette(256), dtype=np.uint8).ravel()
    for name in names:
        w, h = Image.open(osp.join(data_root, 'JPEGImages',
                                   name + '.jpg')).size
        blocks = rng.integers(0, num_classes, (h // 8 + 1, w // 8 + 1))
        label = np.kron(blocks, np.ones((8, 8), np.int64))[:h, :w]
        label[rng.random((h, w)) < 0.1] = 255
        png = Image.fromarray(label.astype(np.uint8), mode='P')
        png.putpalette(palette.tolist())
        png.save(osp.join(out_dir, name + '.png'))
    return names


@pytest.fixture(scope='session', autouse=True)
def _mmseg_scope():
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op thread for a module of tiny-tensor tests: on a loaded
    2-core machine, 2 OpenMP threads stall (measured 5 s vs 0.1 s a step).
    Use with ``pytestmark = pytest.mark.usefixtures('one_thread')``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """A small generated toy dataset (48 px, 32 train + 8 val images)."""
    from mmseg_wsss_light.toy_generator import generate_dataset
    root = str(tmp_path_factory.mktemp('toy') / 'toy48')
    generate_dataset(
        root, num_train=32, num_val=8, size=48, seed=0, workers=1)
    return root


@pytest.fixture(scope='session')
def toy_vit_pretrain(tmp_path_factory):
    """A stand-in for pretrain/vit-tiny-p8_toy-pretrain.pth (the toy ViT
    configs' init_cfg, made by tools/pretrain_toy_vit.sh, not in a clean
    clone): a freshly initialised toy ViT, saved as a Runner checkpoint and
    extracted with tools/model_converters/extract_backbone.py."""
    import torch
    from mmengine import Config

    from mmseg_wsss.registry import MODELS
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'model_converters'))
    try:
        import extract_backbone
    finally:
        sys.path.pop(0)
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_vit_toy.py'))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['cls_head.conv_seg.weight'] = torch.zeros(9, 128, 1, 1)
    tmp = tmp_path_factory.mktemp('toy_vit_pretrain')
    src, dst = str(tmp / 'iter_3000.pth'), str(tmp / 'vit-tiny-p8.pth')
    torch.save(dict(meta=dict(iter=3000), state_dict=state), src)
    assert extract_backbone.main([src, dst]) == 0
    return dst
