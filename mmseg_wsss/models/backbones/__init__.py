# Copyright (c) OpenMMLab. All rights reserved.
from .wsss_vit import WSSSViT

__all__ = ['WSSSViT']
