# Copyright (c) OpenMMLab. All rights reserved.
from .bg_fg_seg_loss import BgFgSegLoss
from .dense_energy_loss import DenseEnergyLoss
from .ptc_loss import PTCLoss, label_to_affinity, ptc_label_from_cam

__all__ = [
    'BgFgSegLoss', 'DenseEnergyLoss', 'PTCLoss', 'label_to_affinity',
    'ptc_label_from_cam'
]
