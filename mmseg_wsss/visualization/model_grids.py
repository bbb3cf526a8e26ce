# Copyright (c) OpenMMLab. All rights reserved.
"""A segmentor's CAM grids of a data batch: the model side shared by
``tools/analysis_tools/visualize_cams.py`` and
:class:`~mmseg_wsss.engine.hooks.CAMVisualizationHook`."""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import is_model_wrapper

from mmseg_wsss_light.voc_layout import default_palette
from .cam_grid import cam_grid_rows, draw_grid, legend_entries


@torch.no_grad()
def render_cam_grids(model: torch.nn.Module,
                     data_batch: dict,
                     class_names: Sequence[str],
                     palette: Optional[Sequence[Sequence[int]]] = None,
                     iteration: Optional[int] = None,
                     branch: Optional[int] = None,
                     min_size: int = 192) -> List[Dict]:
    """Draw the grid (:func:`draw_cam_grid`) of every image of a batch.

    The maps come from the segmentor's ``visual_maps`` (at ``iteration``;
    None: the current one) and its test prediction (``predict``, on copies
    of the data samples); the ground truth is drawn when the samples carry
    a mask. Runs in the model's current mode: callers set ``eval()``.

    Args:
        model (nn.Module): A WSSS segmentor (a wrapper is unwrapped).
        data_batch (dict): ``inputs`` and ``data_samples`` as a test
            dataloader yields them (before the data preprocessor), with
            ``gt_cls_label``; images of different sizes are fine.
        class_names (Sequence[str]): Class names, background first.
        palette (Sequence[Sequence[int]], optional): RGB colour per class
            id (default: the VOC colour map).
        iteration (int, optional): Training iteration of the gates and
            thresholds.
        branch (int, optional): DuPL's student (default: 1).
        min_size (int): Minimum panel side (pixels) after upscaling.

    Returns:
        list[dict]: Per image ``name`` (file name without extension),
        ``grid`` ((h, w, 3) uint8 RGB), ``titles`` (the panel titles,
        row by row) and ``legend`` (the class ids it names).
    """
    while is_model_wrapper(model):
        model = model.module
    if not hasattr(model, 'visual_maps'):
        raise TypeError(f'{type(model).__name__} is not a WSSS segmentor '
                        '(it has no visual_maps())')
    if not palette:
        palette = default_palette(len(class_names))
    kwargs = {} if branch is None else dict(branch=branch)
    results = []
    # One image at a time: test images differ in size (no padding).
    for inputs, sample in zip(data_batch['inputs'],
                              data_batch['data_samples']):
        data = model.data_preprocessor(
            dict(inputs=[inputs], data_samples=[sample]), False)
        inputs, samples = data['inputs'], data['data_samples']
        maps = model.visual_maps(inputs, samples, iteration, **kwargs)
        pred = model.predict(inputs, [s.clone() for s in samples])[0]
        results.append(
            _grid(model, inputs, samples[0], maps, pred, class_names, palette,
                  iteration, branch, min_size))
    return results


def _grid(model, inputs: torch.Tensor, sample, maps: Dict[str, torch.Tensor],
          pred, class_names: Sequence[str], palette: Sequence[Sequence[int]],
          iteration: Optional[int], branch: Optional[int],
          min_size: int) -> Dict:
    """One image's grid from its (batch of one) maps and prediction."""
    h, w = sample.metainfo['img_shape'][:2]
    image_01 = model.images_01(inputs)[0, :, :h, :w]
    one = {
        key:
        value[0, ..., :h, :w].float().cpu().numpy()
        if key in ('cam', 'aux_cam') else value[0, :h, :w].cpu().numpy()
        for key, value in maps.items()
    }
    one['pred'] = _label_at(pred.pred_sem_seg.data, (h, w))
    gt = None
    if 'gt_sem_seg' in sample:
        gt = _label_at(sample.gt_sem_seg.data, (h, w))
    present = ((sample.gt_cls_label.data > 0).nonzero().flatten() + 1).tolist()
    name = osp.splitext(
        osp.basename(sample.metainfo.get('img_path', 'image')))[0]
    header = f'{name} | {type(model).__name__}'
    if iteration is not None:
        header += f', iteration {iteration}'
    if hasattr(model, 'students'):
        header += f', student {branch or 1}'
    titles = dict(model.VISUAL_MAP_TITLES, pred='prediction')
    if hasattr(model, 'test_branch'):
        # DuPL predicts with test_cfg.branch, not the drawn student.
        used = model.test_branch()
        titles['pred'] += ' (mean)' if used == 'mean' else \
            f' (student {used})'
    rows = cam_grid_rows(
        image_01.permute(1, 2, 0).float().cpu().numpy(), one, class_names,
        palette, present, gt, titles)
    legend = legend_entries(one, present, gt)
    grid = draw_grid(rows, legend, class_names, palette, header, min_size)
    return dict(
        name=name,
        grid=grid,
        titles=[[panel.title for panel in row] for row in rows],
        legend=legend)


def _label_at(label: torch.Tensor, size) -> np.ndarray:
    """(1, h', w') label map as (h, w) numpy (nearest resize if needed,
    e.g. a prediction at the original size of a resized test image)."""
    label = label.long()
    if tuple(label.shape[-2:]) != tuple(size):
        label = F.interpolate(
            label[None].float(), size=tuple(size), mode='nearest')[0].long()
    return label[0].cpu().numpy()
