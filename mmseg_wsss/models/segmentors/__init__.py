# Copyright (c) OpenMMLab. All rights reserved.
from .cam_segmentor import CAMSegmentor
from .dupl_segmentor import DuPLSegmentor
from .toco_segmentor import ToCoSegmentor
from .wsss_encoder_decoder import WSSSEncoderDecoder

__all__ = [
    'CAMSegmentor', 'DuPLSegmentor', 'ToCoSegmentor', 'WSSSEncoderDecoder'
]
from .single_stage_segmentor import SingleStageSegmentor  # noqa: E402

__all__ += ['SingleStageSegmentor']
