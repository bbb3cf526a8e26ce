# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Union

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.utils import OptMultiConfig
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class RRMSegHead(BaseModule):
    """RRM's segmentation branch (also ASDT's seg teacher and student).

    ``3x3 conv (dilation d, bias) -> ReLU -> 3x3 conv (dilation d, bias)``
    on the deepest features (official_code_notes 5.1: WideResNet-38's conv6,
    4096 -> 512 -> 21, d = 12), logits at the feature stride. No batch norm
    and no dropout, as the code.

    Args:
        in_channels (int): Feature channels. 4096 for WideResNet-38.
        channels (int): Hidden channels. Defaults to 512.
        num_classes (int): Classes including background.
        dilation (int): Dilation (and padding) of both convolutions.
            Defaults to 12.
        in_index (int): Which backbone output to use. Defaults to -1.
        init_cfg (dict, optional): Defaults to Xavier-uniform weights (the
            code's ``xavier_uniform_``) and zero biases (the code keeps
            PyTorch's default uniform bias; listed in the README).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 512,
        dilation: int = 12,
        in_index: int = -1,
        init_cfg: OptMultiConfig = dict(
            type='Xavier', layer='Conv2d', distribution='uniform')
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 2:
            raise ValueError('num_classes counts background and at least one '
                             f'object class, got {num_classes}')
        self.num_classes = num_classes
        self.in_index = in_index
        self.conv1 = nn.Conv2d(
            in_channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(
            channels, num_classes, 3, padding=dilation, dilation=dilation)

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """(B, D, h, w) features (or a tuple of them) to (B, K, h, w)
        logits."""
        x = feats if isinstance(feats, Tensor) else feats[self.in_index]
        return self.conv2(F.relu(self.conv1(x)))
