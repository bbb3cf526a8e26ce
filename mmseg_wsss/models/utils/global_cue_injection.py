# Copyright (c) OpenMMLab. All rights reserved.
"""1Stage's Global Cue Injection (GCI, paper Eq. 11, official_code_notes 4)."""
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class GlobalCueInjection(nn.Module):
    """Shallow features re-styled by global cues of the deep features (AdaIN).

    .. code:: text

        deep    -> 1x1 conv (2C) + BN + ReLU -> global max pool
                -> (gamma, beta)
        shallow -> 1x1 conv (C) + BN(affine=False)               -> x_n
        out     = 1x1 conv (C) + BN + ReLU ( ReLU(x_n * (gamma + 1) + beta) )

    ``gamma`` is the first half of the pooled vector and ``beta`` the second.
    The shallow features are normalised by a parameter-free batch norm, as
    the code does (the paper's Eq. 11 writes per-channel mean and standard
    deviation, i.e. instance statistics; the code uses batch statistics in
    training and running statistics at test time).

    Args:
        shallow_channels (int): Channels of the shallow (skip) features.
        deep_channels (int): Channels of the deep features.
        channels (int): C. Defaults to 256.
        norm_cfg (dict): Norm of the convolutions. Defaults to BN.
        shallow_norm_cfg (dict, optional): Norm of the shallow features;
            defaults to ``norm_cfg`` without affine parameters (the code).
            ``dict(type='IN', affine=False)`` gives Eq. 11's per-image
            statistics.
    """

    def __init__(self,
                 shallow_channels: int,
                 deep_channels: int,
                 channels: int = 256,
                 norm_cfg: ConfigType = dict(type='BN'),
                 shallow_norm_cfg: OptConfigType = None) -> None:
        super().__init__()
        self.channels = channels
        self.deep_proj = ConvModule(
            deep_channels, 2 * channels, 1, bias=False, norm_cfg=norm_cfg)
        self.shallow_proj = ConvModule(
            shallow_channels,
            channels,
            1,
            bias=False,
            norm_cfg=shallow_norm_cfg or dict(norm_cfg, affine=False),
            act_cfg=None)
        self.out_proj = ConvModule(
            channels, channels, 1, bias=False, norm_cfg=norm_cfg)

    def forward(self, shallow: Tensor, deep: Tensor) -> Tensor:
        """Inject global cues of ``deep`` into ``shallow``.

        Args:
            shallow (Tensor): (B, C_s, H, W) shallow features.
            deep (Tensor): (B, C_d, h, w) deep features (any size).

        Returns:
            Tensor: (B, C, H, W) augmented shallow features.
        """
        attrs = self.deep_proj(deep).amax(dim=(-2, -1))  # (B, 2C) GMP
        gamma, beta = attrs[:, :self.channels], attrs[:, self.channels:]
        x = self.shallow_proj(shallow)
        x = F.relu(x * (gamma[..., None, None] + 1.) + beta[..., None, None])
        return self.out_proj(x)
