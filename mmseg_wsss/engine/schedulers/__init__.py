# Copyright (c) OpenMMLab. All rights reserved.
from .poly_lr_with_warmup import PolyLRWithWarmup

__all__ = ['PolyLRWithWarmup']
