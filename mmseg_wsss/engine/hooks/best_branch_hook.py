# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg_wsss.registry import HOOKS
from ..runner.checkpoint import save_checkpoint_atomic


@HOOKS.register_module()
class BestBranchHook(Hook):
    """Validate every branch of a multi-branch segmentor, keep the best.

    DuPL trains two students and tests with the one that validates better.
    Before each validation this hook asks the segmentor for every branch's
    prediction (``validate_all_branches``); :class:`MultiBranchIoUMetric`
    scores them and returns ``best_branch``, which this hook writes into the
    segmentor (``set_best_branch``: a buffer, so it travels with the weights
    and ``test_cfg.branch='best'`` uses it at test time) and into the
    ``meta`` of every later checkpoint.

    mmengine saves the checkpoint of iteration N *before* validating at N;
    so that the final checkpoint records the final decision, a checkpoint
    written at the validated iteration is saved again afterwards (same file,
    same iteration in its meta), atomically.

    Args:
        metric_key (str): Metric holding the 1-based best branch. Defaults
            to 'best_branch'.
        resave_checkpoint (bool): Re-save the checkpoint of the validated
            iteration with the decision. Defaults to True.
    """
    # Before CheckpointHook (VERY_LOW): ``save_best`` then already sees the
    # chosen branch.
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 metric_key: str = 'best_branch',
                 resave_checkpoint: bool = True) -> None:
        self.metric_key = metric_key
        self.resave_checkpoint = resave_checkpoint

    @staticmethod
    def _segmentor(runner):
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if not hasattr(model, 'set_best_branch'):
            raise TypeError(
                f'BestBranchHook needs a multi-branch segmentor (with '
                f'set_best_branch), got {type(model).__name__}')
        return model

    def before_val_epoch(self, runner) -> None:
        self._segmentor(runner).validate_all_branches = True

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        model = self._segmentor(runner)
        model.validate_all_branches = False
        if not metrics or self.metric_key not in metrics:
            runner.logger.warning(
                f'BestBranchHook: no {self.metric_key!r} among the '
                'validation metrics (use MultiBranchIoUMetric); the branch '
                'used at test time is unchanged')
            return
        best = int(metrics[self.metric_key])
        model.set_best_branch(best)
        runner.logger.info(f'best branch after validation: {best}')
        if self.resave_checkpoint:
            self._resave(runner)

    def _resave(self, runner) -> None:
        """Save the checkpoint of this iteration again, with the decision."""
        last = runner.message_hub.get_info('last_ckpt')
        if not last or osp.basename(last) != f'iter_{runner.iter}.pth':
            return
        save_checkpoint_atomic(
            runner,
            osp.dirname(last),
            osp.basename(last),
            meta=dict(iter=runner.iter, epoch=runner.epoch),
            by_epoch=False)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._segmentor(runner)
        checkpoint.setdefault('meta', {})['best_branch'] = int(
            model.best_branch)

    def before_test_epoch(self, runner) -> None:
        model = self._segmentor(runner)
        model.validate_all_branches = False
        runner.logger.info(f'testing with branch {model.test_branch()} '
                           f'(test_cfg.branch={model.test_cfg.branch!r})')
