# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg_wsss: single-stage weakly supervised semantic segmentation.

Importing the package applies the stack compatibility fixes (see
``mmseg_wsss.utils.compat``) before anything imports ``mmseg.models``, then
registers every module in mmseg's registries.
"""
from .utils.compat import apply_compat

apply_compat()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
