# Copyright (c) OpenMMLab. All rights reserved.
import logging

from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from mmseg_wsss.registry import HOOKS


@HOOKS.register_module()
class TotalBatchInfoHook(Hook):
    """Log the total batch and warn when it differs from the paper's.

    A changed total batch is the most common reason WSSS reproductions fall
    short (losses such as PTC pool over each process's batch, and the LR was
    tuned for the paper's total). Configs record the paper's total in
    ``auto_scale_lr.base_batch_size``; ``tools/train.py --auto-scale-lr``
    scales the LR linearly to the actual total.
    """
    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        world_size = get_world_size()
        per_process = runner.train_dataloader.batch_size
        total = world_size * per_process
        scale_cfg = runner.cfg.get('auto_scale_lr') or {}
        paper = scale_cfg.get('base_batch_size')
        runner.logger.info(
            f'Total batch: {world_size} process(es) x {per_process} = '
            f'{total}' + (f' (the config records {paper})' if paper else ''))
        if paper and total != paper:
            advice = ('the LR was scaled linearly (--auto-scale-lr)'
                      if scale_cfg.get('enable') else
                      'launch with the recorded total (see the config '
                      "README) or pass --auto-scale-lr to scale the LR "
                      'linearly')
            runner.logger.log(
                logging.WARNING,
                f'Total batch {total} differs from the {paper} this config '
                f'reproduces: results may differ from the published ones; '
                f'{advice}.')
