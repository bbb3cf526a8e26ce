# Copyright (c) OpenMMLab. All rights reserved.
"""Test (and evaluate) a WSSS segmentor (mmseg's tools/test.py plus
mmseg_wsss)."""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import mmseg_wsss  # noqa: E402,F401  (applies the stack fixes, registers)
from mmengine.config import DictAction  # noqa: E402
from mmengine.dist import is_main_process  # noqa: E402
from mmseg_wsss.engine.runner import build_test_runner  # noqa: E402
from mmseg_wsss.utils import load_tool_config  # noqa: E402
from mmseg_wsss.utils import teardown_distributed  # noqa: E402
from mmseg_wsss.utils.config_utils import (  # noqa: E402
    enable_crf, use_training_split)


def parse_args():
    parser = argparse.ArgumentParser(
        description='MMSeg-WSSS test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='directory where the metrics are dumped as json '
        '(metrics.json)')
    parser.add_argument(
        '--out',
        type=str,
        help='directory to save the predictions as PNG label maps')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='draw the predictions over the images and save them under '
        'SHOW_DIR/vis_data/vis_image/ (every image; see --show-interval)')
    parser.add_argument(
        '--show-interval',
        type=int,
        help='with --show/--show-dir: draw the images of every N-th batch '
        '(default: every image, unless --cfg-options sets '
        'default_hooks.visualization.interval)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--crf',
        action='store_true',
        help='refine the predictions with the dense CRF of the config '
        '(enables model.test_cfg.crf: preset, xy_scale, prob_mode, workers) '
        'in CPU worker processes overlapping inference (WSSSTestLoop); the '
        'metrics, --out and --show-dir all get the refined predictions')
    parser.add_argument(
        '--pseudo-labels',
        nargs='?',
        const='train',
        metavar='SPLIT',
        help='score the CAM pseudo labels of a training split instead '
        '(default: train, i.e. ImageSets/Segmentation/train.txt; VOC train '
        'is the 1,464 images the papers score): classes come from the '
        'image-level labels (test_cfg.cls_source=gt), with the method\'s own '
        'CAM scales and background threshold; combine with --crf for the '
        'CAM-label CRF')
    parser.add_argument(
        '--crf-workers',
        type=int,
        help='CRF worker processes, with --crf (model.test_cfg.crf.workers; '
        'default 2; 0 runs the CRF in the test process)')
    parser.add_argument(
        '--data-root',
        help='use this dataset folder for every dataloader; for a '
        'VOC-layout folder with classes.txt the class count follows it')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="mmseg's test-time augmentation (mean of softmax). Not used by "
        'the WSSS configs, whose multi-scale fusion lives in test_cfg.')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.crf_workers is not None and not args.crf:
        parser.error('--crf-workers needs --crf')
    if args.show_interval is not None and args.show_interval < 1:
        parser.error('--show-interval must be at least 1')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' in default_hooks:
        visualization_hook = default_hooks['visualization']
        visualization_hook['draw'] = True
        if args.show_interval is not None:
            visualization_hook['interval'] = args.show_interval
        elif 'default_hooks.visualization.interval' not in (args.cfg_options
                                                            or {}):
            visualization_hook['interval'] = 1  # mmseg's 50 skips most
        if args.show:
            visualization_hook['show'] = True
            visualization_hook['wait_time'] = args.wait_time
        if args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    else:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks. '
            'refer to usage '
            '"visualization=dict(type=\'VisualizationHook\')"')
    return cfg


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')

    cfg = load_tool_config(args)
    # Loaded strictly below, once the model is built (not by the Runner,
    # which loads non-strictly and only logs what did not fit).
    cfg.load_from = None

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    if args.pseudo_labels:
        use_training_split(cfg, args.pseudo_labels)
    if args.crf:
        enable_crf(cfg, args.crf_workers)

    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    runner = build_test_runner(cfg, args.checkpoint, args.config)
    metrics = runner.test()

    if is_main_process() and metrics:
        os.makedirs(cfg.work_dir, exist_ok=True)
        path = osp.join(cfg.work_dir, 'metrics.json')
        with open(path, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
        summary = ', '.join(f'{k}: {float(v):.2f}' for k, v in metrics.items())
        print(f'[test] {summary} (saved to {path})', flush=True)
        if args.out is not None:
            print(f'[test] predictions written to {args.out}', flush=True)
    teardown_distributed()


if __name__ == '__main__':
    main()
