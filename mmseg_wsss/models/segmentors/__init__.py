# Copyright (c) OpenMMLab. All rights reserved.
from .cam_segmentor import CAMSegmentor
from .dupl_segmentor import DuPLSegmentor
from .fsr_segmentor import FSRSegmentor
from .single_stage_segmentor import SingleStageSegmentor
from .toco_segmentor import ToCoSegmentor
from .wsss_encoder_decoder import WSSSEncoderDecoder
from .wsss_segmentor import WSSSSegmentor

__all__ = [
    'CAMSegmentor', 'DuPLSegmentor', 'FSRSegmentor', 'SingleStageSegmentor',
    'ToCoSegmentor', 'WSSSEncoderDecoder', 'WSSSSegmentor'
]
