# Copyright (c) OpenMMLab. All rights reserved.
"""Draw a checkpoint's CAMs and pseudo labels, one PNG grid per image.

Per image: the image; the pseudo label before and after the method's
refinement (ToCo / DuPL: the thresholded CAM label before and after PAR,
and DuPL's noise-filtered label once filtering is on; 1Stage: its masks'
label before and after PAMR; the CAM baseline: the thresholded CAM and,
with ``model.test_cfg.crf`` in the config and pydensecrf installed, its
dense CRF); the test prediction (``predict()``) and the ground truth when
the masks exist; then one heat map per present class (image-level
ground-truth classes) of the CAM (1Stage: its masks) and of ToCo's aux
CAM. A legend names the class colours.

The maps are the segmentor's own (``visual_maps()``): the training CAM
settings of the config and the gates and thresholds of the checkpoint's
iteration (or ``--iter``), on whole images of a split without
augmentation. Small images are upscaled (nearest) to ``--min-size``.

Example::

    python tools/analysis_tools/visualize_cams.py \\
        configs/toco/toco_toy.py work_dirs/toco_toy/iter_3000.pth \\
        --data-root data/toy --split val --num 3 --out work_dirs/cams

The same grids during training: ``CAMVisualizationHook`` (see
``mmseg_wsss/engine/hooks/cam_visualization_hook.py``).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mmseg_wsss  # noqa: E402,F401
from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config of a WSSS segmentor')
    parser.add_argument('checkpoint', help='training checkpoint')
    parser.add_argument('--out', required=True, help='folder for the PNGs')
    parser.add_argument('--data-root', help='dataset folder')
    parser.add_argument(
        '--split', default='train', help='split (ImageSets) to draw')
    parser.add_argument(
        '--num', type=int, default=4, help='first N images of the split')
    parser.add_argument(
        '--indices',
        type=int,
        nargs='+',
        help='these images of the split instead (0-based)')
    parser.add_argument(
        '--branch',
        type=int,
        choices=(1, 2),
        help='DuPL: the student whose maps are drawn (default 1)')
    parser.add_argument(
        '--iter',
        type=int,
        help='training iteration whose gates and thresholds apply (default '
        'the checkpoint\'s)')
    parser.add_argument(
        '--min-size',
        type=int,
        default=192,
        help='upscale small panels (nearest) to this many pixels')
    parser.add_argument(
        '--device',
        default=None,
        help='e.g. cpu or cuda (default cuda when available)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides, as in tools/test.py')
    # What load_tool_config reads besides the above; nothing is written.
    parser.set_defaults(launcher='none', work_dir=None)
    return parser.parse_args(argv)


def split_dataset_cfg(cfg, split: str) -> dict:
    """The test dataset config on ``split``, without the mask transform
    when the masks folder does not exist (the ground truth is optional)."""
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.ann_file = f'ImageSets/Segmentation/{split}.txt'
    ds_cfg.pop('indices', None)
    seg_dir = (ds_cfg.get('data_prefix') or {}).get('seg_map_path')
    if seg_dir and not osp.isdir(
            osp.join(ds_cfg.get('data_root', ''), seg_dir)):
        ds_cfg.with_seg_map = False
        ds_cfg.pipeline = [
            t for t in ds_cfg.pipeline if t.get('type') != 'LoadAnnotations'
        ]
    return ds_cfg


def visualize(cfg,
              checkpoint: str,
              out_dir: str,
              split: str = 'train',
              num: int = 4,
              indices: Optional[Sequence[int]] = None,
              branch: Optional[int] = None,
              iteration: Optional[int] = None,
              min_size: int = 192,
              device: Optional[str] = None) -> List[Dict]:
    """Write the grids of ``checkpoint`` on ``split`` to ``out_dir``.

    Returns:
        list[dict]: Per image ``path`` (the PNG), ``titles`` (the panel
        titles, row by row), ``legend`` (the class ids it names) and
        ``shape`` ((h, w, 3) of the grid).
    """
    import mmcv
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS

    from mmseg_wsss.engine.runner import load_checkpoint_strict
    from mmseg_wsss.utils.config_utils import dataset_classes
    from mmseg_wsss.visualization import render_cam_grids

    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'visual_maps'):
        raise TypeError(f'{type(model).__name__} is not a WSSS segmentor '
                        '(it has no visual_maps())')
    if branch is not None and not hasattr(model, 'students'):
        raise ValueError('--branch is for two-network methods (DuPL)')
    # Strictly, as tools/test.py: the wrong weights must not be drawn.
    ckpt = load_checkpoint_strict(
        model,
        checkpoint,
        classes=dataset_classes(cfg.test_dataloader.dataset))
    if iteration is None:
        iteration = int(ckpt.get('meta', {}).get('iter', 0))
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model.to(device).eval()

    dataset = DATASETS.build(split_dataset_cfg(cfg, split))
    if indices is None:
        indices = range(min(num, len(dataset)))
    bad = [i for i in indices if not 0 <= i < len(dataset)]
    if bad:
        raise IndexError(f'--indices {bad} outside the {len(dataset)} '
                         f'images of {split}')
    classes = list(dataset.metainfo['classes'])
    palette = dataset.metainfo.get('palette')
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for i in indices:
        batch = pseudo_collate([dataset[i]])
        (result, ) = render_cam_grids(
            model,
            batch,
            classes,
            palette,
            iteration=iteration,
            branch=branch,
            min_size=min_size)
        path = osp.join(out_dir, f'{result["name"]}.png')
        mmcv.imwrite(mmcv.rgb2bgr(result['grid']), path)
        written.append(
            dict(
                path=path,
                titles=result['titles'],
                legend=result['legend'],
                shape=result['grid'].shape))
    return written


def main(argv=None) -> int:
    from mmseg_wsss.utils import load_tool_config
    args = parse_args(argv)
    cfg = load_tool_config(args)
    written = visualize(cfg, args.checkpoint, args.out, args.split, args.num,
                        args.indices, args.branch, args.iter, args.min_size,
                        args.device)
    for item in written:
        print(item['path'])
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
