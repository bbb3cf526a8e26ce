# Copyright (c) OpenMMLab. All rights reserved.
"""Make the OpenMMLab stack usable as it is installed on user machines.

Three things are absorbed here, once, at ``import mmseg_wsss``:

1. mmcv must be present (full ``mmcv`` or ``mmcv-lite``); if it is missing
   the error says what to install instead of failing deep inside mmseg.
2. ``mmcv-lite`` has no compiled ops, yet four mmseg modules import
   ``mmcv.ops`` unguarded. When, and only when, ``mmcv._ext`` is absent, a
   minimal ``mmcv.ops`` module is registered: it serves the pure-PyTorch
   ``point_sample``, raises a clear error when a compiled-only op is *called*,
   and raises ``ModuleNotFoundError`` for any other name so that mmseg's own
   ``except ModuleNotFoundError`` guards keep working. With full mmcv nothing
   changes.
3. torch >= 2.6 loads checkpoints with ``weights_only=True``; mmengine's
   Runner checkpoints hold a few non-tensor objects (``HistoryBuffer``, numpy
   scalars and dtypes, ``ConfigDict``). They are registered as safe globals so
   ``--resume`` and ``tools/test.py CKPT`` work while weights-only loading
   stays on for everything else.
"""
import importlib.util
import os.path as osp
import sys
import types
import warnings
from typing import Callable

MMCV_INSTALL_HINT = (
    'mmseg_wsss needs mmcv >= 2.0.0rc4, < 2.2.0. Install either the full '
    'package with compiled ops (`mim install "mmcv>=2.0.0rc4,<2.2.0"`, needs '
    'a matching torch/CUDA build) or the pure-Python `pip install '
    '"mmcv-lite==2.1.0"`; see README.md, Installation.')

# Ops that mmseg imports unguarded but only calls on CUDA tensors.
_COMPILED_ONLY_OPS = ('sigmoid_focal_loss', 'softmax_focal_loss')


def check_mmcv() -> None:
    """Raise an ImportError with install instructions if mmcv is missing."""
    if importlib.util.find_spec('mmcv') is None:
        raise ImportError(MMCV_INSTALL_HINT)


def has_compiled_mmcv_ops() -> bool:
    """Whether the installed mmcv ships its compiled extension."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def _compiled_only(name: str) -> Callable:

    def _raise(*args, **kwargs):
        raise RuntimeError(
            f'mmcv.ops.{name} needs the compiled ops of the full mmcv '
            f'package, but mmcv-lite is installed. {MMCV_INSTALL_HINT}')

    _raise.__name__ = name
    return _raise


class _LiteOpsModule(types.ModuleType):
    """Stand-in for ``mmcv.ops`` when mmcv has no compiled extension."""

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        if name in _COMPILED_ONLY_OPS:
            return _compiled_only(name)
        # ModuleNotFoundError (not AttributeError) so that mmseg's
        # ``try: from mmcv.ops import X / except ModuleNotFoundError`` works.
        raise ModuleNotFoundError(
            f'mmcv.ops.{name} is unavailable: mmcv-lite has no compiled ops. '
            f'{MMCV_INSTALL_HINT}')


def install_mmcv_lite_ops_shim() -> bool:
    """Register the minimal ``mmcv.ops`` if compiled ops are missing.

    Returns:
        bool: True if the shim was installed (or already was).
    """
    if has_compiled_mmcv_ops():
        return False
    # mmcv-lite says so on every import of mmcv.cnn; we know, and say it
    # once, clearly, where a compiled op is actually needed.
    warnings.filterwarnings(
        'ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    current = sys.modules.get('mmcv.ops')
    if isinstance(current, _LiteOpsModule):
        return True
    import mmcv
    ops_dir = osp.join(osp.dirname(mmcv.__file__), 'ops')
    shim = _LiteOpsModule('mmcv.ops', __doc__)
    shim.__path__ = []  # a package, so ``mmcv.ops.x`` imports resolve here
    # point_sample.py is pure PyTorch: load the file itself, bypassing
    # mmcv/ops/__init__.py, which imports the compiled extension.
    spec = importlib.util.spec_from_file_location(
        'mmcv.ops.point_sample', osp.join(ops_dir, 'point_sample.py'))
    point_sample_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(point_sample_mod)
    sys.modules['mmcv.ops.point_sample'] = point_sample_mod
    shim.point_sample = point_sample_mod.point_sample
    shim.bilinear_grid_sample = point_sample_mod.bilinear_grid_sample
    sys.modules['mmcv.ops'] = shim
    mmcv.ops = shim
    return True


def register_checkpoint_safe_globals() -> None:
    """Allow mmengine Runner checkpoints under ``weights_only=True``."""
    import torch
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 does not check
        return
    import numpy as np
    from mmengine.logging import HistoryBuffer
    # `bytes` rebuilds the data of empty arrays; it runs no code.
    safe = [HistoryBuffer, np.dtype, np.ndarray, bytes]
    # numpy scalars are pickled through these reconstructors.
    multiarray = getattr(np, '_core', None) or np.core
    safe += [multiarray.multiarray._reconstruct, multiarray.multiarray.scalar]
    # Each numpy dtype class (np.dtypes.Float64DType, ...) and scalar type.
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        safe += [
            getattr(dtypes_mod, n) for n in dir(dtypes_mod)
            if n.endswith('DType')
        ]
    safe += [
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64
    ]
    try:
        from mmengine.config import ConfigDict
        safe.append(ConfigDict)
    except ImportError:  # pragma: no cover
        pass
    add_safe_globals(safe)
    _make_history_buffer_weights_only_safe(HistoryBuffer)


def _make_history_buffer_weights_only_safe(history_buffer_cls) -> None:
    """Pickle ``HistoryBuffer`` without its statistics methods.

    mmengine's ``HistoryBuffer.__getstate__`` stores the class-level
    ``_statistics_methods`` (functions, pickled through ``getattr``) in every
    instance, which a weights-only load refuses, and allowing ``getattr``
    would defeat the check. The methods are registered on the class at
    import time anyway, so the state need not carry them; loading a state
    that does carry them keeps working through mmengine's ``__setstate__``.
    """
    if getattr(history_buffer_cls, '_mmseg_wsss_patched', False):
        return

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)
        return state

    history_buffer_cls.__getstate__ = __getstate__
    history_buffer_cls._mmseg_wsss_patched = True


def apply_compat() -> None:
    """Apply every compatibility fix; safe to call more than once."""
    check_mmcv()
    install_mmcv_lite_ops_shim()
    register_checkpoint_safe_globals()
