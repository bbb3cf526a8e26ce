# Copyright (c) OpenMMLab. All rights reserved.
"""Schedules of self-distillation: the EMA momentum of a teacher and the
teacher temperature of DINO-style targets (FSR, AAAI 2024; ToCo's CTC).

Both are plain functions of the 0-based training iteration, like
:func:`.thresholds.cosine_threshold`; modules pass ``current_iter()``
(:mod:`.schedule`) when no iteration is given.
"""
import math

_MOMENTUM_SCHEDULES = ('constant', 'cosine')


def ema_momentum(iteration: int,
                 start: float,
                 end: float = 1.0,
                 max_iters: int = 0,
                 schedule: str = 'constant') -> float:
    """Teacher weight ``m`` of ``teacher = m * teacher + (1 - m) * student``.

    * ``'constant'``: ``m = start`` (ToCo's CTC head: 0.9; FSR paper's
      synchronised encoder: 0.0).
    * ``'cosine'`` (FSR code ``cosine_scheduler(0.9995, 1.0, fsr_iters)``;
      DINO's form, used by the FSR paper for the projector, 0.996 -> 1.0)::

          m(i) = end + 0.5 * (start - end) * (1 + cos(pi * i / max_iters))

      for ``0 <= i < max_iters``, and ``end`` from ``max_iters`` on (the
      code appends 1.0 after ``fsr_iters``). ``m(0) = start``; ``end`` is
      never reached inside the schedule (the code's
      ``np.arange(max_iters) / max_iters``). The same half-cosine as
      :func:`.thresholds.cosine_threshold`, written in the FSR code's
      arithmetic order (``end + 0.5 * (start - end) * (1 + cos)``) so
      that ``m`` equals the code's float64 value bit for bit; DuPL's
      threshold keeps its own code's order.

    Note the convention: ``m`` weighs the *teacher*. mmengine's
    ``ExponentialMovingAverage(momentum=...)`` weighs the *student*, i.e.
    its ``momentum`` is ``1 - m``.

    Args:
        iteration (int): 0-based training iteration.
        start (float): ``m`` at iteration 0, in [0, 1].
        end (float): ``m`` at ``max_iters`` (cosine only). Defaults to 1.0.
        max_iters (int): Length of the cosine schedule (FSR: ``fsr_iters`` =
            ``max_iters`` of training). Defaults to 0 (only valid with
            ``'constant'``).
        schedule (str): 'constant' or 'cosine'. Defaults to 'constant'.

    Returns:
        float: The momentum ``m`` in [0, 1].
    """
    if schedule not in _MOMENTUM_SCHEDULES:
        raise ValueError(f'schedule must be one of {_MOMENTUM_SCHEDULES}, '
                         f'got {schedule!r}')
    for name, value in (('start', start), ('end', end)):
        if not 0. <= value <= 1.:
            raise ValueError(f'momentum {name} must be in [0, 1], got '
                             f'{value}')
    if schedule == 'constant':
        return float(start)
    if max_iters <= 0:
        raise ValueError(f'a cosine momentum needs max_iters > 0, got '
                         f'{max_iters}')
    i = max(int(iteration), 0)
    if i >= max_iters:
        return float(end)
    return end + 0.5 * (start - end) * (1. + math.cos(math.pi * i / max_iters))


def teacher_temperature(iteration: int,
                        warmup_iters: int,
                        start: float = 0.04,
                        end: float = 0.07) -> float:
    """DINO teacher temperature: linear warm-up, then constant.

    FSR's ``FSRLoss`` indexes
    ``concat(linspace(start, end, warmup_iters), [end] * ...)`` with the
    0-based iteration, so for ``i < warmup_iters``::

        t(i) = start + (end - start) * i / (warmup_iters - 1)

    (``t(warmup_iters - 1) = end`` already; a 1-iteration warm-up is just
    ``start``), and ``end`` afterwards. FSR: 0.04 -> 0.07 with
    ``warmup_iters = int(max_iters / 8)`` (2,500 on VOC, 10,000 on COCO).

    Args:
        iteration (int): 0-based training iteration.
        warmup_iters (int): Iterations of the warm-up (0: always ``end``).
        start (float): Temperature at iteration 0. Defaults to 0.04.
        end (float): Temperature after the warm-up. Defaults to 0.07.

    Returns:
        float: The temperature.
    """
    i = max(int(iteration), 0)
    if i >= warmup_iters:
        return float(end)
    if i == warmup_iters - 1 and i > 0:
        return float(end)  # linspace's endpoint is exact
    if warmup_iters == 1:
        return float(start)
    # numpy's linspace: ``i * step + start`` (same rounding as the code).
    step = (end - start) / (warmup_iters - 1)
    return i * step + start
