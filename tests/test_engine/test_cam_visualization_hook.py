# Copyright (c) OpenMMLab. All rights reserved.
"""CAMVisualizationHook: grids to the visualizer every ``interval``."""
import os
import os.path as osp
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmseg.registry import DATASETS, MODELS
from mmseg.visualization import SegLocalVisualizer

from conftest import REPO_ROOT
from mmseg_wsss.registry import HOOKS
from mmseg_wsss.utils import set_data_root

pytestmark = pytest.mark.usefixtures('one_thread')
CONFIG = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_resnet_toy.py')


@pytest.fixture(scope='module')
def runner_parts(toy_root):
    """A random-weight CAM baseline and the toy val dataset."""
    cfg = Config.fromfile(CONFIG)
    set_data_root(cfg, toy_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    return model, dataset


def _runner(model, dataset, tmp_path, name):
    """What the hook reads of a Runner, with a real visualizer writing
    local vis_data under ``tmp_path``."""
    visualizer = SegLocalVisualizer(
        name=name,
        vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path))
    return SimpleNamespace(
        model=model,
        iter=0,
        val_dataloader=SimpleNamespace(dataset=dataset),
        visualizer=visualizer)


def _train(hook, runner, iters=4):
    """Call the hook as IterBasedTrainLoop does after each iteration."""
    for it in range(iters):
        runner.iter = it
        hook.after_train_iter(runner, batch_idx=it)


def test_interval_two_over_four_iterations(runner_parts, tmp_path):
    model, dataset = runner_parts
    runner = _runner(model, dataset, tmp_path, 'cam_vis_hook_on')
    hook = HOOKS.build(
        dict(type='CAMVisualizationHook', interval=2, num_images=1))
    model.train()
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 7)
    with mock.patch.object(
            runner.visualizer, 'add_image',
            wraps=runner.visualizer.add_image) as add_image:
        _train(hook, runner)
    assert [c.kwargs['step'] for c in add_image.call_args_list] == [2, 4]
    name, image = add_image.call_args.args
    assert name == 'cams_val_00000'
    assert image.dtype == np.uint8 and image.ndim == 3
    # 48 px images: 192 px panels, at least image, label, prediction, gt.
    assert image.shape[2] == 3 and image.shape[1] >= 4 * 192
    # Back in train mode; the iteration others read is untouched.
    assert model.training and hub.get_info('iter') == 7
    saved = sorted(
        os.listdir(osp.join(str(tmp_path), 'vis_data', 'vis_image')))
    assert saved == ['cams_val_00000_2.png', 'cams_val_00000_4.png']


def test_interval_zero_is_off(runner_parts, tmp_path):
    model, dataset = runner_parts
    runner = _runner(model, dataset, tmp_path, 'cam_vis_hook_off')
    hook = HOOKS.build(dict(type='CAMVisualizationHook'))
    assert hook.interval == 0
    with mock.patch.object(runner.visualizer, 'add_image') as add_image, \
            mock.patch.object(hook, 'visualize') as visualize:
        _train(hook, runner)
    add_image.assert_not_called()
    visualize.assert_not_called()


def test_only_rank_zero_draws(runner_parts, tmp_path):
    model, dataset = runner_parts
    runner = _runner(model, dataset, tmp_path, 'cam_vis_hook_rank1')
    hook = HOOKS.build(dict(type='CAMVisualizationHook', interval=1))
    with mock.patch(
            'mmseg_wsss.engine.hooks.cam_visualization_hook.'
            'is_main_process',
            return_value=False), \
            mock.patch.object(runner.visualizer, 'add_image') as add_image:
        _train(hook, runner, iters=2)
    add_image.assert_not_called()


def test_bad_arguments():
    with pytest.raises(ValueError, match='dataloader'):
        HOOKS.build(dict(type='CAMVisualizationHook', dataloader='train'))
    with pytest.raises(ValueError, match='interval'):
        HOOKS.build(dict(type='CAMVisualizationHook', interval=-1))
