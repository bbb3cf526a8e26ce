# Copyright (c) OpenMMLab. All rights reserved.
from typing import List

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class PolyLRWithWarmup(LRSchedulerMixin, _ParamScheduler):
    """ToCo's ``PolyWarmupAdamW`` schedule (official_code_notes 1.9).

    At 0-based iteration ``t`` the LR of every group is its base LR times

    - ``1 - (1 - t / warmup_iters) * (1 - warmup_ratio)`` while
      ``t < warmup_iters`` (linear warm-up from ``warmup_ratio``), then
    - ``(1 - t / end) ** power``: poly decay measured from iteration 0, not
      from the end of the warm-up (mmengine's ``LinearLR`` + ``PolyLR`` would
      restart the decay at the warm-up's end).

    Closed form, so ``--resume`` restores it exactly.

    Args:
        optimizer: Wrapped optimizer.
        warmup_iters (int): Warm-up length. Defaults to 1500.
        warmup_ratio (float): LR factor at iteration 0. Defaults to 1e-6.
        power (float): Poly power. Defaults to 0.9.
        begin (int): First iteration. Defaults to 0.
        end (int): ``max_iters`` of the decay.
        by_epoch (bool): Must be False (iteration-based).
    """

    def __init__(self,
                 optimizer,
                 warmup_iters: int = 1500,
                 warmup_ratio: float = 1e-6,
                 power: float = 0.9,
                 begin: int = 0,
                 end: int = 20000,
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False) -> None:
        if by_epoch:
            raise ValueError('PolyLRWithWarmup is iteration-based: set '
                             'by_epoch=False')
        if not 0 <= warmup_iters < end:
            raise ValueError(f'need 0 <= warmup_iters < end, got '
                             f'{warmup_iters} and {end}')
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.power = power
        super().__init__(
            optimizer,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    def factor(self, t: int) -> float:
        """LR multiplier at iteration ``t`` (counted from ``begin``)."""
        if t < self.warmup_iters:
            return 1 - (1 - t / self.warmup_iters) * (1 - self.warmup_ratio)
        return max(1 - t / (self.end - self.begin), 0.) ** self.power

    def _get_value(self) -> List[float]:
        f = self.factor(self.last_step)
        return [base * f for base in self.base_values]
