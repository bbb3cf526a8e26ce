# Copyright (c) OpenMMLab. All rights reserved.
"""tools/test.py loads strictly: the wrong weights are an error, not a
score (missing/unexpected keys, shape mismatches, with both class lists)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT
from mmseg_wsss.engine.runner import load_checkpoint_strict
from mmseg_wsss.registry import MODELS
from mmseg_wsss.utils import drop_pretrained
from tool_runs import run_python

pytestmark = pytest.mark.usefixtures('one_thread')

RESNET = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_resnet_toy.py')
VIT = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_vit_toy.py')


def _model(config, num_classes=None):
    cfg = Config.fromfile(config)
    drop_pretrained(cfg.model)
    if num_classes is not None:
        cfg.model.cls_head.num_classes = num_classes
    return MODELS.build(cfg.model)


def _save(model, path, classes):
    torch.save(
        dict(
            meta=dict(dataset_meta=dict(classes=tuple(classes))),
            state_dict=model.state_dict()), path)
    return str(path)


def _classes(n):
    return ['background'] + [f'c{i}' for i in range(1, n)]


def test_matching_checkpoint_loads(tmp_path):
    src = _model(RESNET)
    ckpt = _save(src, tmp_path / 'ok.pth', _classes(10))
    dst = _model(RESNET)
    load_checkpoint_strict(dst, ckpt, classes=_classes(10))
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key


def test_class_count_mismatch_names_both(tmp_path):
    ckpt = _save(_model(RESNET), tmp_path / 'ten.pth', _classes(10))
    with pytest.raises(RuntimeError) as err:
        load_checkpoint_strict(
            _model(RESNET, 12), ckpt, classes=_classes(12), config_name='X')
    msg = str(err.value)
    assert 'shape mismatch' in msg and 'cls_head' in msg
    assert '(9, ' in msg and '(11, ' in msg  # foreground classifiers
    assert 'built for 12 classes' in msg and 'trained on 10 classes' in msg


def test_other_architecture_names_keys(tmp_path):
    ckpt = _save(_model(VIT), tmp_path / 'vit.pth', _classes(10))
    with pytest.raises(RuntimeError) as err:
        load_checkpoint_strict(_model(RESNET), ckpt, classes=_classes(10))
    msg = str(err.value)
    assert 'missing from the checkpoint' in msg
    assert 'not in the model' in msg and 'more)' in msg


def test_same_count_other_names_warns(tmp_path, monkeypatch):
    from mmseg_wsss.engine.runner import checkpoint
    logged = []
    monkeypatch.setattr(checkpoint, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    ckpt = _save(_model(RESNET), tmp_path / 'ok.pth', _classes(10))
    names = ['background'] + [f'd{i}' for i in range(1, 10)]
    load_checkpoint_strict(_model(RESNET), ckpt, classes=names)
    assert any('class names differ' in msg for msg in logged)


def test_test_tool_refuses_wrong_checkpoint(toy_root, tmp_path):
    """A ViT checkpoint on the ResNet config: tools/test.py exits non-zero,
    names the keys and writes no metrics.json."""
    ckpt = _save(_model(VIT), tmp_path / 'vit.pth', _classes(10))
    work_dir = tmp_path / 'test'
    result = run_python([
        'tools/test.py', RESNET, ckpt, '--data-root', toy_root, '--work-dir',
        str(work_dir), '--cfg-options', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ])
    assert result.returncode != 0
    assert 'does not fit the model' in result.stderr
    assert 'missing from the checkpoint' in result.stderr
    assert not (work_dir / 'metrics.json').exists()
