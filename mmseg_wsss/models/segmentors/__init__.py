# Copyright (c) OpenMMLab. All rights reserved.
from .cam_segmentor import CAMSegmentor
from .toco_segmentor import ToCoSegmentor
from .wsss_encoder_decoder import WSSSEncoderDecoder

__all__ = ['CAMSegmentor', 'ToCoSegmentor', 'WSSSEncoderDecoder']
