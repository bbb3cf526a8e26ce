# Copyright (c) OpenMMLab. All rights reserved.
"""Plain layers and tensor helpers (no WSSS algorithm lives here)."""
from .deeplab_aspp import DeepLabASPP
from .denormalize import denormalize_images
from .fused_multihead_attention import FusedMultiheadAttention, fuse_attention
from .global_cue_injection import GlobalCueInjection
from .merge_cfg import merge_cfg
from .resize import resize
from .stochastic_gate import StochasticGate

__all__ = [
    'DeepLabASPP', 'denormalize_images', 'FusedMultiheadAttention',
    'fuse_attention', 'GlobalCueInjection', 'merge_cfg', 'resize',
    'StochasticGate'
]
