# Copyright (c) OpenMMLab. All rights reserved.
from .bg_fg_seg_loss import BgFgSegLoss
from .consistency_loss import ConsistencyLoss
from .dense_energy_loss import DenseEnergyLoss
from .discrepancy_loss import DiscrepancyLoss
from .ptc_loss import PTCLoss, label_to_affinity

__all__ = [
    'BgFgSegLoss', 'ConsistencyLoss', 'DenseEnergyLoss', 'DiscrepancyLoss',
    'PTCLoss', 'label_to_affinity'
]
from .class_balanced_ce_loss import (
    ClassBalancedCELoss,  # noqa: E402
    class_balanced_weights,
    class_pixel_counts)

__all__ += [
    'ClassBalancedCELoss', 'class_balanced_weights', 'class_pixel_counts'
]
from .class_token_contrast_loss import ClassTokenContrastLoss  # noqa: E402
from .dino_distill_loss import (  # noqa: E402
    DINODistillLoss, soft_cross_entropy)
from .fsr_class_loss import FSRClassLoss  # noqa: E402
from .fsr_patch_loss import FSRPatchLoss  # noqa: E402

__all__ += [
    'ClassTokenContrastLoss', 'DINODistillLoss', 'FSRClassLoss',
    'FSRPatchLoss', 'soft_cross_entropy'
]
from .balanced_seeding_loss import BalancedSeedingLoss  # noqa: E402
from .constrain_to_boundary_loss import ConstrainToBoundaryLoss  # noqa: E402

__all__ += ['BalancedSeedingLoss', 'ConstrainToBoundaryLoss']
