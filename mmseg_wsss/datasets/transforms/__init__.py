# Copyright (c) OpenMMLab. All rights reserved.
from .pack_wsss_inputs import PackWSSSInputs
from .random_crop_with_box import RandomCropWithBox
from .random_rescale import RandomRescale
from .toco_photometric_aug import ToCoPhotometricAug

__all__ = [
    'PackWSSSInputs', 'RandomCropWithBox', 'RandomRescale',
    'ToCoPhotometricAug'
]
