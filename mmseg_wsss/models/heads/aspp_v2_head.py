# Copyright (c) OpenMMLab. All rights reserved.
"""DeepLab-v2's ASPP classifier (mmseg 1.x has only v3 and v3+)."""
from typing import Optional, Sequence, Union

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.utils import OptConfigType
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class ASPPV2Head(BaseDecodeHead):
    """DeepLab-v2 head: the sum of parallel dilated 3x3 classifiers.

    .. code:: text

        x (B, in, h, w) -> conv3x3 rate 6  -> (B, K, h, w) --+
                        -> conv3x3 rate 12 -> (B, K, h, w) --+-- sum -> logits
                        -> conv3x3 rate 18 -> (B, K, h, w) --+
                        -> conv3x3 rate 24 -> (B, K, h, w) --+

    Chen et al., "DeepLab: Semantic Image Segmentation with Deep
    Convolutional Nets, Atrous Convolution, and Fully Connected CRFs"
    (TPAMI 2017), ResNet-101 variant, as the PyTorch port that ASDT trains
    its second stage with (kazuto1011/deeplab-pytorch, ``_ASPPModule``):
    each branch maps the features straight to the ``K`` classes (bias on,
    padding = dilation, so the map keeps its size), and the branches are
    summed; no batch norm, no activation, no 1x1 classifier. Unlike
    DeepLab-v3's ASPP (mmseg's ``ASPPHead``) there is no image pooling and
    no projection.

    BaseDecodeHead's ``conv_seg`` is removed: the branches are the
    classifier, so every parameter is used (DDP needs that). Weights are
    initialised N(0, 0.01) and biases 0, as the port does.

    Args:
        in_channels (int): Channels of the selected backbone output
            (ResNet-101: 2048).
        dilations (Sequence[int]): Rates of the branches.
            Defaults to (6, 12, 18, 24) (DeepLab-v2 "ASPP-L").
        channels (int, optional): Unused: each branch outputs the classes.
            Accepted so that configs written for other heads still build.
        dropout_ratio (float): Dropout2d on the input features before the
            branches. DeepLab-v2 (ResNet) has none. Defaults to 0.
        in_index (int): Which backbone output to use. Defaults to -1 (the
            last).
        init_cfg (dict, optional): Defaults to N(0, 0.01) on every conv,
            bias 0.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``num_classes``,
            ``loss_decode``, ``align_corners``, ``ignore_index``...).
            ``norm_cfg``/``act_cfg`` are not used.
    """

    def __init__(self,
                 in_channels: int,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 channels: Optional[int] = None,
                 dropout_ratio: float = 0.,
                 in_index: int = -1,
                 init_cfg: OptConfigType = dict(
                     type='Normal', std=0.01, bias=0, layer='Conv2d'),
                 **kwargs) -> None:
        if not isinstance(in_channels, int):
            raise TypeError('ASPPV2Head takes a single input; got '
                            f'in_channels={in_channels}')
        if not dilations:
            raise ValueError('ASPPV2Head needs at least one dilation')
        super().__init__(
            in_channels,
            in_channels if channels is None else channels,
            dropout_ratio=dropout_ratio,
            in_index=in_index,
            init_cfg=init_cfg,
            **kwargs)
        self.dilations = tuple(int(d) for d in dilations)
        # The branches are the classifier: drop BaseDecodeHead's 1x1
        # conv_seg, which would otherwise sit unused in the state dict.
        del self.conv_seg
        self.branches = nn.ModuleList(
            nn.Conv2d(
                in_channels,
                self.out_channels,
                kernel_size=3,
                padding=d,
                dilation=d,
                bias=True) for d in self.dilations)

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Segmentation logits.

        Args:
            inputs (Tensor | Sequence[Tensor]): A (B, in_channels, h, w) map
                or the backbone's tuple, of which ``in_index`` is used.

        Returns:
            Tensor: Logits (B, out_channels, h, w), the sum of the branches.
        """
        x = inputs if isinstance(inputs, Tensor) else \
            self._transform_inputs(inputs)
        if self.dropout is not None:
            x = self.dropout(x)
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out
