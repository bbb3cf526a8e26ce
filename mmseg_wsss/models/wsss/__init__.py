# Copyright (c) OpenMMLab. All rights reserved.
"""The WSSS algorithms, each in one place and shared by every method: CAM
computation (:mod:`.cam`), CAM to pseudo label (:mod:`.cam_to_label`),
thresholds and schedules (:mod:`.thresholds`, :mod:`.schedule`), PAR/PAMR
on the shared dilated-neighbour machinery, noise filtering, nGWP class
scores and DuPL's strong view."""
from .cam import (CLS_SOURCES, IGNORE_INDEX, cam_from_weights, cam_score_map,
                  multi_scale_cam, normalize_cam, pool_features,
                  present_classes, stack_cls_labels)
from .cam_to_label import (cam_to_label, mask_outside_box,
                           masks_to_pseudo_label, ptc_label_from_cam,
                           refine_cams_with_bkg)
from .dilated_neighbors import (dilated_neighbor_sum, get_dilated_neighbors,
                                neighbor_distances, neighbor_offsets,
                                num_neighbors)
from .gaussian_mixture_1d import GaussianMixture1D
from .ngwp import (add_background_logit, focal_mask_penalty, mask_class_scores,
                   ngwp_scores)
from .noise_filter import filter_noisy_labels
from .pamr import PAMR
from .par import PAR
from .schedule import GATE_RULES, at_iteration, current_iter, is_active
from .strong_view import StrongView
from .thresholds import cosine_threshold, per_image_threshold

__all__ = [
    'CLS_SOURCES', 'IGNORE_INDEX', 'cam_from_weights', 'cam_score_map',
    'multi_scale_cam', 'normalize_cam', 'pool_features', 'present_classes',
    'stack_cls_labels', 'cam_to_label', 'mask_outside_box',
    'masks_to_pseudo_label', 'ptc_label_from_cam', 'refine_cams_with_bkg',
    'dilated_neighbor_sum', 'get_dilated_neighbors', 'neighbor_distances',
    'neighbor_offsets', 'num_neighbors', 'GaussianMixture1D',
    'add_background_logit', 'focal_mask_penalty', 'mask_class_scores',
    'ngwp_scores', 'filter_noisy_labels', 'PAMR', 'PAR', 'GATE_RULES',
    'at_iteration', 'current_iter', 'is_active', 'StrongView',
    'cosine_threshold', 'per_image_threshold'
]
from .distillation_schedules import ema_momentum, teacher_temperature  # noqa
from .ema_teacher import EMATeacher  # noqa: E402
from .local_crops import cam_to_roi_mask, crop_from_roi  # noqa: E402
from .uncertainty_masking import MASKING_FORMS, UncertaintyMasking  # noqa

__all__ += [
    'ema_momentum', 'teacher_temperature', 'EMATeacher', 'cam_to_roi_mask',
    'crop_from_roi', 'MASKING_FORMS', 'UncertaintyMasking'
]
from .reliable_label import (  # noqa: E402
    rrm_crf_inputs, rrm_label_from_crf, rrm_reliable_label)
from .schedule import pulse_high  # noqa: E402

__all__ += [
    'rrm_crf_inputs', 'rrm_label_from_crf', 'rrm_reliable_label', 'pulse_high'
]
from .seeds import SEED_RULES, confident_seeds, seed_maps  # noqa: E402

__all__ += ['SEED_RULES', 'confident_seeds', 'seed_maps']
