# Copyright (c) OpenMMLab. All rights reserved.
"""Iteration-dependent behaviour: the current iteration from mmengine, the
iteration gates of the methods' loss terms."""
from contextlib import contextmanager
from typing import Iterator, Optional

from mmengine.logging import MessageHub

# How the official scripts compare the 0-based iteration ``n_iter`` with a
# gate's start ``s`` (every script counts ``for n_iter in range(max_iters)``):
# 'after': on when n_iter > s (ToCo, DuPL: ``if n_iter <= s:`` weight 0);
# 'from':  on when n_iter >= s (FSR: ``if (n_iter + 1) <= s:``; 1Stage's
#          ``epoch >= PRETRAIN``).
GATE_RULES = ('after', 'from')


def current_iter(default: int = 0) -> int:
    """The 0-based training iteration mmengine's RuntimeInfoHook recorded.

    It survives ``--resume`` (the Runner restores the iteration before
    training goes on). Outside a Runner (unit tests) ``default`` is returned.
    """
    try:
        value = MessageHub.get_current_instance().get_info('iter')
    except Exception:  # noqa: BLE001  (no MessageHub instance)
        value = None
    return default if value is None else int(value)


def is_active(start_iter: Optional[int],
              rule: str = 'from',
              default: int = 0) -> bool:
    """Whether a term gated at ``start_iter`` is on at the current iteration.

    Args:
        start_iter (int, optional): The gate; None: always on.
        rule (str): 'after' (on when ``iter > start_iter``) or 'from' (on
            when ``iter >= start_iter``), see ``GATE_RULES``.
        default (int): The iteration outside a Runner.
    """
    if rule not in GATE_RULES:
        raise ValueError(f'gate rule must be one of {GATE_RULES}, got '
                         f'{rule!r}')
    if start_iter is None:
        return True
    it = current_iter(default)
    return it > start_iter if rule == 'after' else it >= start_iter


@contextmanager
def at_iteration(iteration: Optional[int]) -> Iterator[None]:
    """Run a block as if training were at ``iteration`` (None: as it is).

    Sets the MessageHub's ``iter`` for the block and restores it after, so
    gates and schedules (which read it) give their values at ``iteration``.
    """
    if iteration is None:
        yield
        return
    hub = MessageHub.get_current_instance()
    had = 'iter' in hub.runtime_info
    old = hub.get_info('iter')
    hub.update_info('iter', int(iteration))
    try:
        yield
    finally:
        if had:
            hub.update_info('iter', old)
        else:
            hub.pop_info('iter', None)


def pulse_high(iteration: int, period: int, high_iters: int) -> bool:
    """Whether a pulse-width (square) wave is high at ``iteration``.

    ASDT's alternate signal (paper Sec. 3): a wave of period ``T`` whose
    first ``T_h`` iterations of each period are high (the class teacher
    teaches) and the other ``T_l = T - T_h`` low (the segmentation teacher
    does); ``tau = T / T_h`` (paper: T 150 with tau 5 in the set-up, 6 best
    in Fig. 5). The released code's ``(iter // (T // N)) % N == 0`` with
    ``N = 6`` is this wave with ``T_h = T / N = 25``, high first. Read with
    the MessageHub's iteration it survives ``--resume``.

    Args:
        iteration (int): 0-based training iteration.
        period (int): ``T`` (>= 1).
        high_iters (int): ``T_h`` in [0, T].

    Returns:
        bool: True on the high level.
    """
    if period < 1 or not 0 <= high_iters <= period:
        raise ValueError(f'need period >= 1 and 0 <= high_iters <= period, '
                         f'got period={period}, high_iters={high_iters}')
    return iteration % period < high_iters
