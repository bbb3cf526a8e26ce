# Copyright (c) OpenMMLab. All rights reserved.
"""Tool flags a new user tripped on: --show-dir draws every image,
--tensorboard logs to TensorBoard (or says what to install)."""
import argparse
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT
from tool_runs import CONFIG


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        f'wsss_tools_{name}', osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _show_args(**kwargs):
    args = dict(
        show=False,
        show_dir='vis',
        show_interval=None,
        wait_time=2,
        cfg_options=None)
    args.update(kwargs)
    return argparse.Namespace(**args)


def test_show_dir_draws_every_image_by_default():
    tools_test = _tool('test')
    cfg = tools_test.trigger_visualization_hook(
        Config.fromfile(CONFIG), _show_args())
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.interval == 1
    assert cfg.visualizer.save_dir == 'vis'
    cfg = tools_test.trigger_visualization_hook(
        Config.fromfile(CONFIG), _show_args(show_interval=5))
    assert cfg.default_hooks.visualization.interval == 5
    # An interval set with --cfg-options is kept.
    cfg = Config.fromfile(CONFIG)
    cfg.default_hooks.visualization.interval = 7
    cfg = tools_test.trigger_visualization_hook(
        cfg,
        _show_args(cfg_options={'default_hooks.visualization.interval': 7}))
    assert cfg.default_hooks.visualization.interval == 7


def test_tensorboard_flag(monkeypatch):
    tools_train = _tool('train')
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name == 'tensorboard':
            return object()
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, 'find_spec', find_spec)
    cfg = Config.fromfile(CONFIG)
    tools_train.add_tensorboard(cfg)
    tools_train.add_tensorboard(cfg)  # once only
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', 'TensorboardVisBackend']

    monkeypatch.setattr(
        importlib.util, 'find_spec', lambda name, *args: None
        if name == 'tensorboard' else real_find_spec(name, *args))
    with pytest.raises(SystemExit, match=r'pip install -e "\.\[tb\]"'):
        tools_train.add_tensorboard(Config.fromfile(CONFIG))
