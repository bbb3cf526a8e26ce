# Copyright (c) OpenMMLab. All rights reserved.
from .cam import (IGNORE_INDEX, cam_from_weights, cam_score_map, cam_to_label,
                  mask_outside_box, multi_scale_cam, normalize_cam,
                  pool_features, present_classes, stack_cls_labels)
from .dense_crf import CRF_PRESETS, CRFPool, DenseCRF
from .dilated_neighbors import (dilated_neighbor_sum, get_dilated_neighbors,
                                neighbor_distances, neighbor_offsets,
                                num_neighbors)
from .gaussian_mixture_1d import GaussianMixture1D
from .ms_fusion import fuse_max_over_scales, fuse_mean_with_bg_power
from .noise_filter import filter_noisy_labels
from .par import PAR, refine_cams_with_bkg
from .schedule import current_iter, is_active
from .strong_view import StrongView

__all__ = [
    'IGNORE_INDEX', 'cam_from_weights', 'cam_score_map', 'cam_to_label',
    'mask_outside_box', 'multi_scale_cam', 'normalize_cam', 'pool_features',
    'stack_cls_labels', 'present_classes', 'CRF_PRESETS', 'CRFPool', 'DenseCRF',
    'fuse_max_over_scales', 'fuse_mean_with_bg_power', 'PAR',
    'refine_cams_with_bkg', 'dilated_neighbor_sum', 'get_dilated_neighbors',
    'neighbor_distances', 'neighbor_offsets', 'num_neighbors',
    'current_iter', 'is_active', 'GaussianMixture1D', 'filter_noisy_labels',
    'StrongView'
]
# 1Stage
from .deeplab_aspp import DeepLabASPP  # noqa: E402
from .global_cue_injection import GlobalCueInjection  # noqa: E402
from .mask_pseudo_label import masks_to_pseudo_label  # noqa: E402
from .ngwp import (add_background_logit, focal_mask_penalty,  # noqa: E402
                   mask_class_scores, ngwp_scores)
from .pamr import PAMR  # noqa: E402
from .stochastic_gate import StochasticGate  # noqa: E402

__all__ += [
    'DeepLabASPP', 'GlobalCueInjection', 'masks_to_pseudo_label',
    'add_background_logit', 'focal_mask_penalty', 'mask_class_scores',
    'ngwp_scores', 'PAMR', 'StochasticGate'
]
