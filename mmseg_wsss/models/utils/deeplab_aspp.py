# Copyright (c) OpenMMLab. All rights reserved.
"""DeepLabv3+'s ASPP as 1Stage builds it (official_code_notes 4)."""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.utils import ConfigType
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class DeepLabASPP(nn.Module):
    """Atrous spatial pyramid pooling with image pooling and a projection.

    .. code:: text

        x -> [1x1, 3x3 rate 12, 3x3 rate 24, 3x3 rate 36]  (conv+BN+ReLU each)
          -> global average pool -> 1x1 conv+BN+ReLU -> broadcast
          -> concat (5 C) -> 1x1 conv (C) + BN + ReLU -> Dropout 0.5

    The branches are mmseg's :class:`ASPPModule`; no convolution has a bias.
    The rates are those of output stride 8, also for backbones at stride 32
    (the code's ResNets).

    Args:
        in_channels (int): Input channels.
        channels (int): C. Defaults to 256.
        dilations (Sequence[int]): Branch rates. Defaults to (1, 12, 24, 36).
        dropout (float): Dropout after the projection. Defaults to 0.5.
        norm_cfg (dict): Norm config. Defaults to BN.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        dilations: Sequence[int] = (1, 12, 24, 36),
        dropout: float = 0.5,
        norm_cfg: ConfigType = dict(type='BN')) -> None:
        super().__init__()
        conv_kw = dict(bias=False, norm_cfg=norm_cfg)
        self.branches = ASPPModule(
            tuple(dilations),
            in_channels,
            channels,
            conv_cfg=None,
            norm_cfg=norm_cfg,
            act_cfg=dict(type='ReLU'))
        for branch in self.branches:
            # mmseg's ASPPModule leaves bias='auto' (off with a norm) already;
            # asserted so a changed default cannot add parameters silently.
            assert branch.conv.bias is None
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvModule(in_channels, channels, 1, **conv_kw))
        self.project = ConvModule((len(dilations) + 1) * channels, channels, 1,
                                  **conv_kw)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, h, w) -> (B, C, h, w)."""
        pooled = F.interpolate(
            self.image_pool(x),
            size=x.shape[-2:],
            mode='bilinear',
            align_corners=True)
        out = torch.cat(self.branches(x) + [pooled], dim=1)
        return self.dropout(self.project(out))
