# Copyright (c) OpenMMLab. All rights reserved.
"""WideResNet-38 ("ResNet-38d") of AffinityNet and 1Stage.

The layout is exactly the one the public ImageNet weights
(``ilsvrc-cls_rna-a1_cls1000_ep-0001.pth``, converted from mxnet) were saved
from (official_code_notes 4), including the module names, so the weights load
with ``tools/model_converters/wr38_to_wsss.py`` and nothing renamed.
"""
from typing import List, Optional, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.utils import OptMultiConfig
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_wsss.registry import MODELS


class PreActBlock(nn.Module):
    """Wide pre-activation basic block (``ResBlock`` of the code).

    ``x -> BN-ReLU -> 3x3 conv (stride, first dilation) -> BN-ReLU -> 3x3
    conv (dilation)``, added to ``x``, or to a 1x1 projection of the first
    BN-ReLU output where the shape changes (``conv_branch1``).

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Channels between the two 3x3 convolutions.
        out_channels (int): Output channels.
        stride (int): Stride of the first 3x3 convolution and the
            projection. Defaults to 1.
        first_dilation (int, optional): Dilation of the first 3x3
            convolution; defaults to ``dilation``.
        dilation (int): Dilation of the second 3x3 convolution.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 first_dilation: Optional[int] = None,
                 dilation: int = 1) -> None:
        super().__init__()
        first_dilation = dilation if first_dilation is None else first_dilation
        self.same_shape = in_channels == out_channels and stride == 1
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(
            in_channels,
            mid_channels,
            3,
            stride,
            padding=first_dilation,
            dilation=first_dilation,
            bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(mid_channels)
        self.conv_branch2b1 = nn.Conv2d(
            mid_channels,
            out_channels,
            3,
            padding=dilation,
            dilation=dilation,
            bias=False)
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(
                in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, H, W) -> (B, out, H / stride, W / stride)."""
        act = F.relu(self.bn_branch2a(x))
        shortcut = x if self.same_shape else self.conv_branch1(act)
        out = self.conv_branch2a(act)
        out = self.conv_branch2b1(F.relu(self.bn_branch2b1(out)))
        return shortcut + out


class PreActBottleneck(nn.Module):
    """Wide pre-activation bottleneck (``ResBlock_bot`` of the code).

    ``BN-ReLU -> 1x1 (out/4) -> BN-ReLU-Dropout2d -> 3x3 (out/2, dilation)
    -> BN-ReLU-Dropout2d -> 1x1 (out)``, added to a 1x1 projection of the
    first BN-ReLU output (the code always projects).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first 1x1 and the projection.
        dilation (int): Dilation of the 3x3 convolution.
        dropout (float): Channel dropout before the 3x3 and the last 1x1.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 dilation: int = 1,
                 dropout: float = 0.) -> None:
        super().__init__()
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(
            in_channels, out_channels // 4, 1, stride, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(out_channels // 4)
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(
            out_channels // 4,
            out_channels // 2,
            3,
            padding=dilation,
            dilation=dilation,
            bias=False)
        self.bn_branch2b2 = nn.BatchNorm2d(out_channels // 2)
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(
            out_channels // 2, out_channels, 1, bias=False)
        self.conv_branch1 = nn.Conv2d(
            in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, H, W) -> (B, out, H / stride, W / stride)."""
        act = F.relu(self.bn_branch2a(x))
        shortcut = self.conv_branch1(act)
        out = self.conv_branch2a(act)
        out = self.dropout_2b1(F.relu(self.bn_branch2b1(out)))
        out = self.conv_branch2b1(out)
        out = self.dropout_2b2(F.relu(self.bn_branch2b2(out)))
        return shortcut + self.conv_branch2b2(out)


# (name, constructor args) in forward order. Stage = the digit after 'b'.
_BLOCKS = (
    ('b2', PreActBlock, (64, 128, 128), dict(stride=2)),
    ('b2_1', PreActBlock, (128, 128, 128), {}),
    ('b2_2', PreActBlock, (128, 128, 128), {}),
    ('b3', PreActBlock, (128, 256, 256), dict(stride=2)),
    ('b3_1', PreActBlock, (256, 256, 256), {}),
    ('b3_2', PreActBlock, (256, 256, 256), {}),
    ('b4', PreActBlock, (256, 512, 512), dict(stride=2)),
    ('b4_1', PreActBlock, (512, 512, 512), {}),
    ('b4_2', PreActBlock, (512, 512, 512), {}),
    ('b4_3', PreActBlock, (512, 512, 512), {}),
    ('b4_4', PreActBlock, (512, 512, 512), {}),
    ('b4_5', PreActBlock, (512, 512, 512), {}),
    # Stride 8 from here on: dilation instead of stride (first conv of b5
    # keeps dilation 1, as the code).
    ('b5', PreActBlock, (512, 512, 1024), dict(first_dilation=1, dilation=2)),
    ('b5_1', PreActBlock, (1024, 512, 1024), dict(dilation=2)),
    ('b5_2', PreActBlock, (1024, 512, 1024), dict(dilation=2)),
    ('b6', PreActBottleneck, (1024, 2048), dict(dilation=4, dropout=0.3)),
    ('b7', PreActBottleneck, (2048, 4096), dict(dilation=4, dropout=0.5)),
)


@MODELS.register_module()
class WideResNet38(BaseModule):
    """WideResNet-38 at output stride 8 (AffinityNet's ResNet-38d).

    .. code:: text

        conv1a 3x3 3->64 (stride 1)
        b2, b2_1, b2_2     64->128, stride 2
        b3, b3_1, b3_2    128->256, stride 4   -> conv3 (B, 256, H/4, W/4)
        b4, b4_1..b4_5    256->512, stride 8
        b5, b5_1, b5_2    512->1024, dilation 2
        b6 bottleneck    1024->2048, dilation 4, dropout 0.3
        b7 bottleneck    2048->4096, dilation 4, dropout 0.5
        bn7, ReLU                              -> conv6 (B, 4096, H/8, W/8)

    Pre-activation blocks (BN-ReLU before every convolution), no conv
    biases; 105.07M parameters. As in 1Stage, every batch norm is frozen
    (parameters and running statistics: the ImageNet statistics are kept)
    and ``conv1a`` and the ``b2*`` blocks are not trained.

    Args:
        out_indices (Sequence[int]): Which of (conv3, conv6) to return.
            Defaults to (0, 1).
        frozen_stages (int): -1: nothing frozen; 0: ``conv1a``; 1: ``conv1a``
            and ``b2*`` (the code); 2: also ``b3*``; ... Defaults to 1.
        norm_eval (bool): Keep every batch norm in eval mode and its affine
            parameters fixed (the code; right for pretrained weights, wrong
            for training from scratch). Defaults to True.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint='pretrain/wr38_imagenet-wsss.pth')``.
    """

    def __init__(self,
                 out_indices: Tuple[int, ...] = (0, 1),
                 frozen_stages: int = 1,
                 norm_eval: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not set(out_indices) <= {0, 1}:
            raise ValueError(
                f'out_indices index (conv3, conv6): got {out_indices}')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.conv1a = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.block_names: List[str] = []
        for name, block, args, kwargs in _BLOCKS:
            self.add_module(name, block(*args, **kwargs))
            self.block_names.append(name)
        self.bn7 = nn.BatchNorm2d(4096)
        self._freeze()

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        stages = tuple(f'b{s}' for s in range(2, 2 + self.frozen_stages))
        return [self.conv1a] + [
            getattr(self, n)
            for n in self.block_names if n.split('_')[0] in stages
        ]

    def _freeze(self) -> None:
        for module in self._frozen_modules():
            for p in module.parameters():
                p.requires_grad = False
        if self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    for p in m.parameters():
                        p.requires_grad = False

    def train(self, mode: bool = True) -> 'WideResNet38':
        """Train mode, with the batch norms kept in eval mode (frozen)."""
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) images to the selected of
        (conv3 (B, 256, H/4, W/4), conv6 (B, 4096, H/8, W/8))."""
        x = self.conv1a(x)
        conv3 = None
        for name in self.block_names:
            x = getattr(self, name)(x)
            if name == 'b3_2':
                conv3 = x
        conv6 = F.relu(self.bn7(x))
        outs = (conv3, conv6)
        return tuple(outs[i] for i in self.out_indices)
