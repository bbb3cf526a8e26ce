# Copyright (c) OpenMMLab. All rights reserved.
"""Post-processing of predictions: multi-scale + flip fusion (the methods'
own test-time pipelines) and dense CRF (the segmentors' ``test_cfg.crf``
step: :class:`CRFPostProcessor`)."""
from .crf_postprocessor import CRFPostProcessor
from .dense_crf import CRF_PRESETS, CRFPool, DenseCRF
from .ms_fusion import (fuse_max_over_scales, fuse_mean_over_views,
                        fuse_mean_with_bg_power)
from .permutohedral import PermutohedralLattice
from .torch_dense_crf import TorchDenseCRF

__all__ = [
    'CRF_PRESETS', 'CRFPool', 'CRFPostProcessor', 'DenseCRF',
    'PermutohedralLattice', 'TorchDenseCRF', 'fuse_max_over_scales',
    'fuse_mean_over_views', 'fuse_mean_with_bg_power'
]
