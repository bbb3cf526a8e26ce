# Copyright (c) OpenMMLab. All rights reserved.
"""The DeepLab-style dilated VGG-16 of 1Stage (``vgg16d``)."""
from typing import Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.utils import OptMultiConfig
from torch import Tensor

from mmseg_wsss.registry import MODELS

# (name, in, out, dilation) of the 3x3 convolutions; a max pool follows the
# last of each group (kernel 3, padding 1; stride 2, 2, 2, 1).
_CONVS = (
    (('conv1_1', 3, 64, 1), ('conv1_2', 64, 64, 1)),
    (('conv2_1', 64, 128, 1), ('conv2_2', 128, 128, 1)),
    (('conv3_1', 128, 256, 1), ('conv3_2', 256, 256, 1),
     ('conv3_3', 256, 256, 1)),
    (('conv4_1', 256, 512, 1), ('conv4_2', 512, 512, 1),
     ('conv4_3', 512, 512, 1)),
    (('conv5_1', 512, 512, 2), ('conv5_2', 512, 512, 2),
     ('conv5_3', 512, 512, 2)),
)
_POOL_STRIDES = (2, 2, 2, 1)


@MODELS.register_module()
class DilatedVGG16(BaseModule):
    """VGG-16 at output stride 8 with a reduced fc6 (DeepLab's "VGG16 20M").

    Why not mmpretrain's ``VGG``: 1Stage takes its stride-4 skip from conv3_3
    *before* pool3, pools with 3x3 windows (padding 1), keeps pool4 at stride
    1 and dilates conv5; mmpretrain's VGG returns stage outputs after 2x2
    pools only.

    .. code:: text

        conv1_1..conv1_2  pool 3/2   conv2_1..conv2_2  pool 3/2
        conv3_1..conv3_3  -> conv3 (B, 256, H/4, W/4)  pool 3/2
        conv4_1..conv4_3  pool 3/1   conv5_1..conv5_3 (dilation 2)
        fc6 3x3 512->1024, ReLU, Dropout2d 0.5, fc7 1x1 1024->1024, ReLU
                          -> conv6 (B, 1024, H/8, W/8)

    Convolutions have biases; there is no normalisation. Module names are the
    code's, so its ``vgg16_20M.pth`` loads as is. ``conv1_*`` are frozen
    (``frozen_stages=1``), as in the code.

    Args:
        out_indices (Sequence[int]): Which of (conv3, conv6) to return.
            Defaults to (0, 1).
        frozen_stages (int): -1: none; k: the first k conv groups.
            Defaults to 1.
        fc6_dilation (int): Dilation of fc6. Defaults to 1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 out_indices: Tuple[int, ...] = (0, 1),
                 frozen_stages: int = 1,
                 fc6_dilation: int = 1,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not set(out_indices) <= {0, 1}:
            raise ValueError(
                f'out_indices index (conv3, conv6): got {out_indices}')
        self.out_indices = tuple(out_indices)
        for group in _CONVS:
            for name, cin, cout, dil in group:
                self.add_module(
                    name, nn.Conv2d(cin, cout, 3, padding=dil, dilation=dil))
        self.pools = nn.ModuleList(
            nn.MaxPool2d(3, stride=s, padding=1) for s in _POOL_STRIDES)
        self.fc6 = nn.Conv2d(
            512, 1024, 3, padding=fc6_dilation, dilation=fc6_dilation)
        self.drop6 = nn.Dropout2d(0.5)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        for group in _CONVS[:max(frozen_stages, 0)]:
            for name, *_ in group:
                for p in getattr(self, name).parameters():
                    p.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) images to the selected of
        (conv3 (B, 256, H/4, W/4), conv6 (B, 1024, H/8, W/8))."""
        conv3 = None
        for i, group in enumerate(_CONVS):
            for name, *_ in group:
                x = F.relu(getattr(self, name)(x))
            if i == 2:
                conv3 = x
            if i < len(self.pools):
                x = self.pools[i](x)
        x = self.drop6(F.relu(self.fc6(x)))
        conv6 = F.relu(self.fc7(x))
        outs = (conv3, conv6)
        return tuple(outs[i] for i in self.out_indices)
