# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence

from mmengine.dataset import pseudo_collate
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg_wsss.registry import HOOKS

DATALOADERS = ('val', 'test')


@HOOKS.register_module()
class CAMVisualizationHook(Hook):
    """Draw the CAM grids of a few fixed images during training.

    Every ``interval`` training iterations, the grids of
    ``tools/analysis_tools/visualize_cams.py`` (image, pseudo labels before
    and after refinement, prediction, ground truth, a CAM heat map per
    present class; :func:`render_cam_grids`) of the first ``num_images``
    images of the ``dataloader`` dataset go to the runner's visualizer
    backends (``add_image``: the local ``vis_data``, TensorBoard or W&B, as
    ``vis_backends`` configures), named ``cams_<image>``, at step
    ``runner.iter + 1`` (the iteration count of the checkpoint saved at the
    same point). Only rank 0 draws; the model runs in eval mode without
    gradients and goes back to its mode after (visualising draws no random
    numbers, so training goes on as without the hook).

    Off by default (``interval=0``) and in no config; enable it with::

        custom_hooks = [
            dict(type='TotalBatchInfoHook'),
            dict(type='CAMVisualizationHook', interval=500, num_images=4),
        ]

    or ``--cfg-options`` on the command line.

    Args:
        interval (int): Draw every this many iterations; 0 switches the
            hook off. Defaults to 0.
        num_images (int): The first N images of the dataset. Defaults to 4.
        dataloader (str): 'val' or 'test': whose dataset (its test
            pipeline, masks) the images come from. Defaults to 'val'.
        indices (Sequence[int], optional): These dataset indices instead
            of the first ``num_images``.
        branch (int, optional): DuPL's student (default 1).
        min_size (int): Minimum panel side in pixels. Defaults to 192.
    """
    priority = 'LOW'

    def __init__(self,
                 interval: int = 0,
                 num_images: int = 4,
                 dataloader: str = 'val',
                 indices: Optional[Sequence[int]] = None,
                 branch: Optional[int] = None,
                 min_size: int = 192) -> None:
        if dataloader not in DATALOADERS:
            raise ValueError(f'dataloader must be one of {DATALOADERS}, got '
                             f'{dataloader!r}')
        if interval < 0 or num_images < 1:
            raise ValueError('interval must be >= 0 and num_images >= 1')
        self.interval = int(interval)
        self.num_images = int(num_images)
        self.dataloader = dataloader
        self.indices = None if indices is None else list(indices)
        self.branch = branch
        self.min_size = int(min_size)
        self._items: Optional[List[dict]] = None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self.interval <= 0 or not self.every_n_train_iters(
                runner, self.interval) or not is_main_process():
            return
        self.visualize(runner)

    def visualize(self, runner) -> None:
        """Draw the grids now and send them to the visualizer."""
        from mmseg_wsss.visualization import render_cam_grids
        model = runner.model
        while is_model_wrapper(model):
            # The module itself: rank 0 alone runs it, no DDP collectives.
            model = model.module
        dataset = self._dataset(runner)
        classes = list(dataset.metainfo['classes'])
        palette = dataset.metainfo.get('palette')
        if self._items is None:
            # The test pipeline is deterministic: load the images once.
            indices = self.indices or range(min(self.num_images, len(dataset)))
            self._items = [dataset[i] for i in indices]
        was_training = model.training
        model.eval()
        try:
            grids = render_cam_grids(
                model,
                pseudo_collate(self._items),
                classes,
                palette,
                iteration=runner.iter,
                branch=self.branch,
                min_size=self.min_size)
        finally:
            model.train(was_training)
        for result in grids:
            runner.visualizer.add_image(
                f'cams_{result["name"]}', result['grid'], step=runner.iter + 1)

    def _dataset(self, runner):
        """The dataset of the runner's ``dataloader`` loader."""
        # mmengine builds the loop (and its loader) on first access; with no
        # such loop configured the access fails.
        loader = getattr(runner, f'{self.dataloader}_dataloader', None)
        if loader is None:
            raise RuntimeError(
                f'CAMVisualizationHook: the runner has no '
                f'{self.dataloader}_dataloader; configure one or choose '
                f'another of {DATALOADERS}')
        return loader.dataset
