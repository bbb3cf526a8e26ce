# Copyright (c) OpenMMLab. All rights reserved.
"""DeepLab-LargeFOV segmentation head of ToCo, DuPL and FSR."""
from typing import Sequence, Union

import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class LargeFOVHead(BaseDecodeHead):
    """DeepLab-LargeFOV head: two dilated 3x3 convs and a 1x1 classifier.

    ``conv3x3(d) in->C`` ReLU ``conv3x3(d) C->C`` ReLU ``conv1x1 C->K``, all
    bias-free, with ``C = channels`` (512) and ``d = dilation`` (5), applied
    to one backbone output (ToCo: the final normed ViT token map, stride 16).
    The 1x1 classifier is mmseg's ``conv_seg``, rebuilt without bias, so
    every parameter is used. No dropout by default (ToCo has none).

    Args:
        in_channels (int): Channels of the selected input.
        channels (int): Channels of the two dilated convs. Defaults to 512.
        dilation (int): Dilation (and padding) of the 3x3 convs. Defaults
            to 5.
        init (str): ``'pytorch'`` keeps PyTorch's default conv init (ToCo and
            DuPL never call their init function); ``'kaiming'`` applies
            Kaiming-normal (``mode='fan_out'``, ReLU gain) to every conv as
            FSR does, through ``init_cfg`` when ``init_weights()`` runs.
            Defaults to 'pytorch'.
        in_index (int): Which backbone output to use. Defaults to 0 (the
            final map of ``WSSSViT``).
        dropout_ratio (float): Dropout before ``conv_seg``. Defaults to 0.
        init_cfg (dict, optional): Overrides ``init`` when given.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``num_classes``,
            ``loss_decode``, ``norm_cfg``, ``act_cfg``, ``align_corners``...).
            With ``norm_cfg`` a norm layer follows each 3x3 conv (not in the
            original head).
    """

    def __init__(self,
                 in_channels: int,
                 channels: int = 512,
                 dilation: int = 5,
                 init: str = 'pytorch',
                 in_index: int = 0,
                 dropout_ratio: float = 0.,
                 init_cfg: Union[dict, None] = None,
                 **kwargs) -> None:
        if init not in ('pytorch', 'kaiming'):
            raise ValueError(
                f'init must be "pytorch" or "kaiming", got {init}')
        if init_cfg is None and init == 'kaiming':
            init_cfg = dict(
                type='Kaiming',
                layer='Conv2d',
                mode='fan_out',
                nonlinearity='relu',
                distribution='normal')
        # ``init_cfg=None`` (instead of BaseDecodeHead's Normal(std=0.01) on
        # ``conv_seg``) keeps PyTorch's default init, which ToCo trains with.
        super().__init__(
            in_channels,
            channels,
            in_index=in_index,
            dropout_ratio=dropout_ratio,
            init_cfg=init_cfg,
            **kwargs)
        if not isinstance(self.in_channels, int):
            raise TypeError('LargeFOVHead takes a single input; got '
                            f'in_channels={self.in_channels}')
        self.dilation = dilation
        self.init = init

        layers = []
        for i in range(2):
            # Plain convs, not mmcv's ConvModule: ConvModule re-initialises
            # its conv with Kaiming at construction, which would replace the
            # PyTorch default init of the original head.
            layers.append(
                nn.Conv2d(
                    self.in_channels if i == 0 else channels,
                    channels,
                    kernel_size=3,
                    padding=dilation,
                    dilation=dilation,
                    bias=False))
            if self.norm_cfg is not None:
                layers.append(build_norm_layer(self.norm_cfg, channels)[1])
            layers.append(build_activation_layer(self.act_cfg))
        self.convs = nn.Sequential(*layers)
        # The original classifier has no bias; replace BaseDecodeHead's (and
        # re-register it after ``convs`` so modules print in forward order).
        del self.conv_seg
        self.conv_seg = nn.Conv2d(
            channels, self.out_channels, kernel_size=1, bias=False)

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Segmentation logits.

        Args:
            inputs (Tensor | Sequence[Tensor]): A (B, in_channels, h, w) map
                or the backbone's tuple, of which ``in_index`` is used.

        Returns:
            Tensor: Logits (B, out_channels, h, w) at the input's stride.
        """
        x = inputs if isinstance(inputs, Tensor) else \
            self._transform_inputs(inputs)
        return self.cls_seg(self.convs(x))
