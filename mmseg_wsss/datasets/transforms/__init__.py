# Copyright (c) OpenMMLab. All rights reserved.
from .pack_wsss_inputs import PackWSSSInputs
from .random_crop_with_box import RandomCropWithBox

__all__ = ['PackWSSSInputs', 'RandomCropWithBox']
