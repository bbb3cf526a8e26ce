# Copyright (c) OpenMMLab. All rights reserved.
from .cam_cls_head import CAMClsHead

__all__ = ['CAMClsHead']
