# Copyright (c) OpenMMLab. All rights reserved.
"""Config inputs of tools/train.py and tools/test.py that the parsed config
used to ignore silently: ``--cfg-options data_root=`` and a shortened
``train_cfg.max_iters`` (the LR schedule kept its old length)."""
import argparse
import logging
import os.path as osp

import pytest
from mmengine.config import Config

import mmseg_wsss.utils.config_utils as config_utils
from conftest import REPO_ROOT, num_classes_in
from mmseg_wsss.utils import iter_dataset_cfgs, load_tool_config

TOCO = osp.join(REPO_ROOT, 'configs', 'toco', 'toco-noctc_toy.py')
CAM = osp.join(REPO_ROOT, 'configs', 'cam_baseline', 'cam_resnet_toy.py')
DUPL = osp.join(REPO_ROOT, 'configs', 'dupl', 'dupl_toy.py')
TOY_CLASSES = ('background', 'disc', 'square', 'triangle', 'star', 'cross',
               'ring', 'hexagon', 'crescent', 'boat')


def _root(tmp_path, name, classes):
    """A VOC-layout folder as far as the config needs it: classes.txt."""
    root = tmp_path / name
    root.mkdir()
    (root / 'classes.txt').write_text('\n'.join(classes) + '\n')
    return str(root)


@pytest.fixture
def toy_like_root(tmp_path):
    return _root(tmp_path, 'toy_like', TOY_CLASSES)


@pytest.fixture
def logs(monkeypatch):
    """(level, message) of every print_log of config_utils."""
    records = []

    def record(msg, logger=None, level=logging.INFO):
        records.append((level, msg))

    monkeypatch.setattr(config_utils, 'print_log', record)
    return records


def _args(config, cfg_options=None, data_root=None, work_dir='work'):
    return argparse.Namespace(
        config=config,
        launcher='none',
        cfg_options=cfg_options,
        data_root=data_root,
        work_dir=work_dir)


def _warnings(logs):
    return [m for level, m in logs if level == logging.WARNING]


def _num_classes(cfg):
    return num_classes_in(cfg.model)


# ------------------------------------------------------------- data_root


@pytest.mark.parametrize('config', [TOCO, CAM])
def test_cfg_options_data_root_works_as_data_root(tmp_path, logs, config):
    root = _root(tmp_path, 'five', ['background', 'a', 'b', 'c', 'd'])
    options = {'data_root': root}
    cfg = load_tool_config(_args(config, cfg_options=options))
    datasets = list(iter_dataset_cfgs(cfg))
    assert datasets and all(ds['data_root'] == root for ds in datasets)
    assert cfg.data_root == root
    assert _num_classes(cfg) and set(_num_classes(cfg)) == {5}
    assert any(f'data_root={root}' in m for _, m in logs)
    assert options == {'data_root': root}  # the caller's dict is untouched
    # Exactly as --data-root.
    cli = load_tool_config(_args(config, data_root=root))
    assert cli.to_dict() == cfg.to_dict()


def test_data_root_wins_over_cfg_options_with_a_warning(tmp_path, logs):
    five = _root(tmp_path, 'five', ['background', 'a', 'b', 'c', 'd'])
    three = _root(tmp_path, 'three', ['background', 'a', 'b'])
    cfg = load_tool_config(
        _args(CAM, cfg_options={'data_root': three}, data_root=five))
    assert all(ds['data_root'] == five for ds in iter_dataset_cfgs(cfg))
    assert set(_num_classes(cfg)) == {5}
    (warning, ) = _warnings(logs)
    assert five in warning and three in warning
    assert f'using --data-root {five}' in warning


# ------------------------------------------------------------- max_iters


def test_shorter_max_iters_moves_the_schedule_end(toy_like_root, logs):
    cfg = load_tool_config(
        _args(
            CAM,
            cfg_options={'train_cfg.max_iters': 100},
            data_root=toy_like_root))
    assert cfg.train_cfg.max_iters == 100
    warmup, poly = cfg.param_scheduler
    assert poly.type == 'PolyLR' and (poly.begin, poly.end) == (150, 3000)
    # PolyLR would start at 150 > 100: it keeps its end (mmengine refuses
    # end <= begin) and is reported as never running; the warm-up ending at
    # 150 is cut short.
    assert (warmup.begin, warmup.end) == (0, 150)
    text = '\n'.join(_warnings(logs))
    assert 'param_scheduler[1] (PolyLR) begins at 150' in text
    assert 'never runs' in text
    assert 'param_scheduler[0] (LinearLR) ends at 150' in text
    assert 'cut short' in text
    # The checkpoint interval (500) and the validation interval (3000) now
    # exceed the run: what mmengine will do is said.
    assert 'default_hooks.checkpoint.interval=500 exceeds' in text
    assert 'at the last iteration 100 (save_last=True)' in text
    assert 'train_cfg.val_interval=3000 exceeds' in text
    assert 'validates once, at the last iteration 100' in text


def test_max_iters_moves_phases_that_ended_with_training(toy_like_root, logs):
    cfg = load_tool_config(
        _args(
            TOCO,
            cfg_options={'train_cfg.max_iters': 1000},
            data_root=toy_like_root))
    warmup, poly = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 225)
    assert (poly.begin, poly.end) == (225, 1000)
    infos = [m for level, m in logs if level == logging.INFO]
    assert any('3000 -> 1000' in m and 'param_scheduler[1] (PolyLR)' in m
               for m in infos)
    (gates, ) = [m for m in _warnings(logs) if 'method gates' in m]
    assert 'model.train_cfg.seg_start_iter=300' in gates
    assert 'num_iter' not in gates  # PAR refinement steps, not training
    # The checkpoint interval (500) fits; validation (3000) does not.
    assert not any('checkpoint.interval' in m for m in _warnings(logs))
    assert any('val_interval=3000' in m for m in _warnings(logs))


def test_max_iters_100_on_toco(toy_like_root, logs):
    cfg = load_tool_config(
        _args(
            TOCO,
            cfg_options={
                'train_cfg.max_iters': 100,
                'train_cfg.val_interval': 100
            },
            data_root=toy_like_root))
    assert cfg.param_scheduler[1].end == 3000  # begins at 225: never runs
    text = '\n'.join(_warnings(logs))
    assert 'begins at 225, at or after the new end 100' in text
    assert 'model.train_cfg.seg_start_iter=300 (never reached)' in text
    assert 'val_interval' not in text


def test_dupl_gates_are_listed_once(toy_like_root, logs):
    cfg = load_tool_config(
        _args(
            DUPL,
            cfg_options={
                'train_cfg.max_iters': 2000,
                'model.train_cfg.seg_start_iter': 200
            },
            data_root=toy_like_root))
    assert cfg.param_scheduler[1].end == 2000
    (gates, ) = [m for m in _warnings(logs) if 'method gates' in m]
    for kept in ('filter_start_iter=1200', 'consistency_start_iter=1200',
                 'dynamic_thr.max_iters=3000 (never reached)',
                 'dynamic_thr.warmup_iters=300'):
        assert f'model.train_cfg.{kept}' in gates, kept
    # Set in the options, so not "kept as configured"; None gates are off.
    assert 'seg_start_iter' not in gates and 'dis_start_iter' not in gates


def test_scheduler_in_the_options_is_kept(toy_like_root, logs):
    cfg = load_tool_config(
        _args(
            CAM,
            cfg_options={
                'train_cfg.max_iters': 1000,
                'param_scheduler.1.end': 2000
            },
            data_root=toy_like_root))
    assert cfg.param_scheduler[1].end == 2000
    assert any('kept as given' in m for _, m in logs)


def test_top_level_max_iters_option_sets_train_cfg(toy_like_root, logs):
    cfg = load_tool_config(
        _args(CAM, cfg_options={'max_iters': 1000}, data_root=toy_like_root))
    assert cfg.train_cfg.max_iters == 1000
    assert cfg.param_scheduler[1].end == 1000


def test_a_config_not_overridden_is_unchanged(toy_like_root, logs):
    for config in (CAM, TOCO):
        reference = Config.fromfile(config)
        cfg = load_tool_config(_args(config, data_root=toy_like_root))
        assert cfg.param_scheduler == reference.param_scheduler
        assert cfg.train_cfg == reference.train_cfg
        assert cfg.default_hooks == reference.default_hooks
        assert cfg.model == reference.model  # same class count
        # Options that leave max_iters alone change nothing else either.
        same = load_tool_config(
            _args(
                config,
                cfg_options={'train_cfg.max_iters': 3000},
                data_root=toy_like_root))
        assert same.to_dict() == cfg.to_dict()
    assert not _warnings(logs)
