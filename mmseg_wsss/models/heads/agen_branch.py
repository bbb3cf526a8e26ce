# Copyright (c) OpenMMLab. All rights reserved.
import torch.nn as nn
import torch.nn.functional as F
from typing import Sequence, Union

from mmengine.model import BaseModule
from mmseg.utils import OptMultiConfig
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class AGENBranch(BaseModule):
    """The convolutional branch AGEN builds its heads from: two 3x3
    convolutions with ReLUs and a 1x1 classifier.

    .. code:: text

        x (B, in_channels, h, w) -> conv1 3x3 -> ReLU -> conv2 3x3 -> ReLU
          -> cls 1x1 -> (B, out_channels, h, w)

    AGEN uses it four ways (paper Sec. III.1-2): branch A's classifier (the
    fc layers of VGG-16 replaced by two 3x3 1024-channel convolutions and a
    1x1 C-channel one), each AGM's classification branch C (256 channels, C
    outputs) and segmentation branch D (512 channels, C + 1 outputs), and
    the classifier of segmentation branch B. ``conv1`` adapts the input
    channels; the AGMs share ``conv2`` and ``cls`` (the segmentor assigns
    them: one branch with a ``conv1`` per stage, ``in_channels`` a
    sequence). No normalisation: the paper names none and VGG-16 has none.

    Args:
        in_channels (int | Sequence[int]): Input channels; a sequence gives
            one ``conv1`` per input (selected by ``forward``'s ``index``),
            the rest shared.
        channels (int): Channels of the two 3x3 convolutions.
        out_channels (int): Outputs of the 1x1 classifier.
        dilation (int): Dilation of the 3x3 convolutions. Defaults to 1.
        init_cfg (dict, optional): Initialisation config. Defaults to None
            (PyTorch's default: the paper initialises these randomly).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 channels: int,
                 out_channels: int,
                 dilation: int = 1,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(in_channels, int):
            in_channels = (in_channels, )
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.conv1 = nn.ModuleList(
            nn.Conv2d(c, channels, 3, padding=dilation, dilation=dilation)
            for c in self.in_channels)
        self.conv2 = nn.Conv2d(
            channels, channels, 3, padding=dilation, dilation=dilation)
        self.cls = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: Tensor, index: int = 0) -> Tensor:
        """(B, in_channels[index], h, w) to (B, out_channels, h, w)."""
        x = F.relu(self.conv1[index](x))
        return self.cls(F.relu(self.conv2(x)))
