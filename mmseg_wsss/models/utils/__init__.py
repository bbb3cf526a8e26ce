# Copyright (c) OpenMMLab. All rights reserved.
"""Plain layers and tensor helpers (no WSSS algorithm lives here)."""
from .deeplab_aspp import DeepLabASPP
from .denormalize import denormalize_images, normalize_images
from .fused_multihead_attention import FusedMultiheadAttention, fuse_attention
from .global_cue_injection import GlobalCueInjection
from .merge_cfg import merge_cfg
from .resize import resize
from .stochastic_gate import StochasticGate

__all__ = [
    'DeepLabASPP', 'denormalize_images', 'FusedMultiheadAttention',
    'fuse_attention', 'GlobalCueInjection', 'merge_cfg', 'normalize_images',
    'resize', 'StochasticGate'
]
from .class_token_aggregation import ClassTokenAggregation  # noqa: E402
from .cross_attention_block import CrossAttentionBlock  # noqa: E402
from .dino_center import DINOCenter  # noqa: E402
from .dino_head import DINOHead  # noqa: E402

__all__ += [
    'ClassTokenAggregation', 'CrossAttentionBlock', 'DINOCenter', 'DINOHead'
]
from .context_attention import ContextAttention  # noqa: E402

__all__ += ['ContextAttention']
