# Copyright (c) OpenMMLab. All rights reserved.
from .wsss_test_loop import WSSSTestLoop

__all__ = ['WSSSTestLoop']
