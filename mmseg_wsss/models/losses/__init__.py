# Copyright (c) OpenMMLab. All rights reserved.
from .bg_fg_seg_loss import BgFgSegLoss
from .ptc_loss import PTCLoss, label_to_affinity, ptc_label_from_cam

__all__ = ['BgFgSegLoss', 'PTCLoss', 'label_to_affinity', 'ptc_label_from_cam']
