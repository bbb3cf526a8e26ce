# Copyright (c) OpenMMLab. All rights reserved.
from .pretrained_new_optim_wrapper_constructor import \
    PretrainedNewOptimWrapperConstructor

__all__ = ['PretrainedNewOptimWrapperConstructor']
