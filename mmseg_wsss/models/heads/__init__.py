# Copyright (c) OpenMMLab. All rights reserved.
from .cam_cls_head import CAMClsHead
from .large_fov_head import LargeFOVHead

__all__ = ['CAMClsHead', 'LargeFOVHead']
