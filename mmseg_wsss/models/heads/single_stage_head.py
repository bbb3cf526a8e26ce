# Copyright (c) OpenMMLab. All rights reserved.
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_wsss.registry import MODELS
from ..utils.deeplab_aspp import DeepLabASPP
from ..utils.global_cue_injection import GlobalCueInjection


@MODELS.register_module()
class SingleStageHead(BaseModule):
    """1Stage's DeepLabv3+ decoder with GCI and the stochastic gate.

    .. code:: text

        deep (stride 8) -> ASPP -> upsample to the skip ┐
        shallow (stride 4) -> 1x1 (48) + BN + ReLU ─────┴ concat
              -> 3x3 (C) + BN + ReLU = x_d (deep features)
        shallow, x_d -> GCI -> x_s (shallow features with global cues)
        SG(x_d, x_s) -> 3x3 + BN + ReLU, Dropout 0.5, 3x3 + BN + ReLU,
                        Dropout 0.1 -> 1x1 (num_classes - 1, bias)

    It returns the *foreground* logits at stride 4; the segmentor prepends
    the constant background logit. As in the code, the ASPP batch norms keep
    their running statistics at the initial values (``aspp_norm_eval``:
    always in eval mode, affine parameters trained), the other batch norms
    train normally, and every convolution is initialised with He-normal
    (fan-in) weights.

    Args:
        in_channels (Sequence[int]): (shallow, deep) channels, e.g.
            (256, 4096) for WideResNet-38.
        num_classes (int): Classes including background.
        in_index (Sequence[int]): Indices of (shallow, deep) in the backbone
            outputs. Defaults to (0, 1).
        channels (int): Decoder width C. Defaults to 256.
        skip_channels (int): Width of the skip projection. Defaults to 48.
        aspp_dilations (Sequence[int]): Defaults to (1, 12, 24, 36).
        aspp_dropout (float): Defaults to 0.5.
        aspp_norm_eval (bool): Freeze the ASPP running statistics. Defaults
            to True.
        use_gci (bool): Global cue injection; False gives the "w/o GCI"
            ablation (a 1x1 conv + BN + ReLU of the skip). Defaults to True.
        gci_shallow_norm_cfg (dict, optional): GCI's normalisation of the
            shallow features; None: batch norm without affine parameters
            (the code); ``dict(type='IN', affine=False)``: Eq. 11.
        gate (dict, optional): :class:`StochasticGate` config; None feeds
            the deep features alone to the decoder ("w/o SG").
            Defaults to ``dict(type='StochasticGate', psi=0.3,
            mode='code')``.
        decoder_dropouts (Sequence[float]): After the two decoder 3x3
            convolutions. Defaults to (0.5, 0.1).
        norm_cfg (dict): Defaults to BN.
        align_corners (bool): Of the upsampling. Defaults to True.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 in_index: Sequence[int] = (0, 1),
                 channels: int = 256,
                 skip_channels: int = 48,
                 aspp_dilations: Sequence[int] = (1, 12, 24, 36),
                 aspp_dropout: float = 0.5,
                 aspp_norm_eval: bool = True,
                 use_gci: bool = True,
                 gci_shallow_norm_cfg: OptConfigType = None,
                 gate: OptConfigType = dict(
                     type='StochasticGate', psi=0.3, mode='code'),
                 decoder_dropouts: Sequence[float] = (0.5, 0.1),
                 norm_cfg: ConfigType = dict(type='BN'),
                 align_corners: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 2:
            raise ValueError('num_classes counts background and at least one '
                             f'object class, got {num_classes}')
        shallow_ch, deep_ch = in_channels
        self.in_channels = tuple(in_channels)
        self.in_index = tuple(in_index)
        self.num_classes = num_classes
        self.channels = channels
        self.align_corners = align_corners
        self.aspp_norm_eval = aspp_norm_eval
        conv_kw = dict(bias=False, norm_cfg=norm_cfg)

        self.aspp = DeepLabASPP(deep_ch, channels, aspp_dilations,
                                aspp_dropout, norm_cfg)
        self.skip = ConvModule(shallow_ch, skip_channels, 1, **conv_kw)
        self.fuse = ConvModule(
            channels + skip_channels, channels, 3, padding=1, **conv_kw)
        if use_gci:
            self.gci = GlobalCueInjection(shallow_ch, channels, channels,
                                          norm_cfg, gci_shallow_norm_cfg)
        else:
            self.shallow = ConvModule(shallow_ch, channels, 1, **conv_kw)
        self.gate = MODELS.build(gate) if gate else None
        layers = []
        for p in decoder_dropouts:
            layers += [
                ConvModule(channels, channels, 3, padding=1, **conv_kw),
                nn.Dropout(p)
            ]
        self.decoder = nn.Sequential(*layers)
        self.conv_seg = nn.Conv2d(channels, num_classes - 1, 1)

    @property
    def use_gci(self) -> bool:
        return hasattr(self, 'gci')

    def init_weights(self) -> None:
        """He-normal (fan-in) convolutions, unit/zero batch norms (the code).

        A ``Pretrained`` ``init_cfg`` is applied instead when given.
        """
        super().init_weights()
        if self.init_cfg is not None:
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, _BatchNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def train(self, mode: bool = True) -> 'SingleStageHead':
        """Train mode, the ASPP batch norms kept in eval mode."""
        super().train(mode)
        if mode and self.aspp_norm_eval:
            for m in self.aspp.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def _upsample(self, x: Tensor, size) -> Tensor:
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=self.align_corners)

    def forward_features(self,
                         feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Deep ``x_d`` and shallow ``x_s`` features before the gate.

        Args:
            feats (Sequence[Tensor]): Backbone outputs.

        Returns:
            tuple[Tensor]: Two (B, C, H/4, W/4) maps.
        """
        shallow, deep = (feats[i] for i in self.in_index)
        skip = self.skip(shallow)
        deep = self._upsample(self.aspp(deep), skip.shape[-2:])
        deep = self.fuse(torch.cat([deep, skip], dim=1))
        if self.use_gci:
            shallow = self.gci(shallow, deep)
        else:
            shallow = self.shallow(shallow)
        return deep, shallow

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Backbone outputs to (B, num_classes - 1, H/4, W/4) logits."""
        deep, shallow = self.forward_features(feats)
        x = self.gate(deep, shallow) if self.gate is not None else deep
        return self.conv_seg(self.decoder(x))
