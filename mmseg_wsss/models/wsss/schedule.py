# Copyright (c) OpenMMLab. All rights reserved.
"""Iteration-dependent behaviour: the current iteration from mmengine."""
from mmengine.logging import MessageHub


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


def is_active(start_iter: int, default: int = 0) -> bool:
    """Whether a term gated "after ``start_iter`` iterations" is on.

    The official scripts count 1-based iterations and switch a term on when
    ``n_iter > start_iter``; mmengine's ``iter`` is 0-based, so the term is
    on from 0-based iteration ``start_iter`` on.
    """
    return current_iter(default) >= start_iter
