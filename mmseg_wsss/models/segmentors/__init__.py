# Copyright (c) OpenMMLab. All rights reserved.
from .cam_segmentor import CAMSegmentor
from .dupl_segmentor import DuPLSegmentor
from .single_stage_segmentor import SingleStageSegmentor
from .toco_segmentor import ToCoSegmentor
from .wsss_encoder_decoder import WSSSEncoderDecoder
from .wsss_segmentor import WSSSSegmentor

__all__ = [
    'CAMSegmentor', 'DuPLSegmentor', 'SingleStageSegmentor', 'ToCoSegmentor',
    'WSSSEncoderDecoder', 'WSSSSegmentor'
]
