# Copyright (c) OpenMMLab. All rights reserved.
from .agen_segmentor import AGENSegmentor
from .asdt_segmentor import ASDTSegmentor
from .cam_segmentor import CAMSegmentor
from .dupl_segmentor import DuPLSegmentor
from .fsr_segmentor import FSRSegmentor
from .rrm_segmentor import RRMSegmentor
from .single_stage_segmentor import SingleStageSegmentor
from .toco_segmentor import ToCoSegmentor
from .wsss_encoder_decoder import WSSSEncoderDecoder
from .wsss_segmentor import WSSSSegmentor

__all__ = [
    'AGENSegmentor', 'ASDTSegmentor', 'CAMSegmentor', 'DuPLSegmentor',
    'FSRSegmentor', 'RRMSegmentor', 'SingleStageSegmentor', 'ToCoSegmentor',
    'WSSSEncoderDecoder', 'WSSSSegmentor'
]
