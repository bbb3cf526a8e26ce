# Copyright (c) OpenMMLab. All rights reserved.
from .cam_segmentor import CAMSegmentor
from .wsss_encoder_decoder import WSSSEncoderDecoder

__all__ = ['CAMSegmentor', 'WSSSEncoderDecoder']
