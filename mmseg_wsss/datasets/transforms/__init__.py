# Copyright (c) OpenMMLab. All rights reserved.
from .add_view import AddView
from .pack_wsss_inputs import PackWSSSInputs
from .random_crop_with_box import RandomCropWithBox
from .random_rescale import RandomRescale
from .random_resized_crop import RandomResizedCrop
from .toco_photometric_aug import ToCoPhotometricAug

__all__ = [
    'AddView', 'PackWSSSInputs', 'RandomCropWithBox', 'RandomRescale',
    'RandomResizedCrop', 'ToCoPhotometricAug'
]
