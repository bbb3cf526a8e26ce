# Copyright (c) OpenMMLab. All rights reserved.
"""AGEN's two-branch backbone: classification branch A and segmentation
branch B sharing their first layers."""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.backbones import ResNet
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor

from mmseg_wsss.registry import MODELS
from .dilated_vgg16 import _CONVS as _VGG_CONVS
from .dilated_vgg16 import DilatedVGG16
from .wide_resnet38 import WideResNet38

# A stage is a list of ops run in order: 'name' (a submodule of the branch,
# dotted for containers) or 'name:relu' (the submodule, then a ReLU).
Stage = List[str]


def branch_stages(net: nn.Module) -> List[Stage]:
    """The stages of a supported backbone, in the order they run.

    - :class:`DilatedVGG16`: conv1, pool1 + conv2 (128 channels, stride 2),
      pool2 + conv3 (stride 4), pool3 + conv4 (stride 8), pool4 (stride 1)
      + conv5 (dilation 2); fc6 / fc7 are not used (AGEN replaces the fc
      layers by its classifier).
    - :class:`WideResNet38`: conv1a, b2*, b3* (stride 4), b4* (stride 8),
      b5*, b6 + b7 + bn7 (conv6).
    - mmseg's ResNet (V1c too): stem + max pool, layer1, ..., layer4.
    """
    if isinstance(net, DilatedVGG16):
        stages = []
        for i, group in enumerate(_VGG_CONVS):
            pool = [f'pools.{i - 1}'] if i > 0 else []
            stages.append(pool + [f'{name}:relu' for name, *_ in group])
        return stages
    if isinstance(net, WideResNet38):
        groups: Dict[str, Stage] = {}
        for name in net.block_names:
            groups.setdefault(name.split('_')[0], []).append(name)
        return ([['conv1a'], groups['b2'], groups['b3'], groups['b4'],
                 groups['b5'], groups['b6'] + groups['b7'] + ['bn7:relu']])
    if isinstance(net, ResNet):
        stem = ['stem'] if net.deep_stem else [
            'conv1', net.norm1_name, 'relu'
        ]
        return [stem + ['maxpool']] + [[name] for name in net.res_layers]
    raise TypeError(f'AGENBackbone supports DilatedVGG16, WideResNet38 and '
                    f'mmseg ResNets, got {type(net).__name__}')


@MODELS.register_module()
class AGENBackbone(BaseModule):
    """Classification branch A and segmentation branch B of AGEN, sharing
    their first ``shared_stages`` stages (paper Sec. III.1: branch B "shares
    the first two layers of the classification branch, and the remain
    layers adopt the ResNet 38 network architecture").

    .. code:: text

        image -> A's first ``shared_stages`` stages -> shared features
          -> A's remaining stages -> cls: the last three outputs
             (A3, A4, A5: VGG-16 conv3_3 / conv4_3 / conv5_3)
          -> B's stages after its first ``shared_stages`` -> seg: every
             output (WR38: B3 = b3, B4 = b4, B5 = b5, conv6)

    The paper does not say where the cut is. The VOC configuration shares
    VGG-16's conv1 and conv2 blocks (128 channels at stride 2: exactly what
    WideResNet-38's b3 takes, its conv1a and b2 blocks being replaced);
    the toy one shares the stem and layer1 of two quarter-width ResNet-18s.
    The replaced stages of B and the unused layers of A (VGG's fc6 / fc7)
    are deleted, so every parameter is trained and counted once.

    Args:
        cls_branch (dict): Branch A's backbone (:class:`DilatedVGG16`, a
            ResNet).
        seg_branch (dict): Branch B's backbone (:class:`WideResNet38`, a
            ResNet).
        shared_stages (int): Leading stages of A that B uses instead of its
            own. Defaults to 2.
        init_cfg (dict, optional): Initialisation config (each branch has
            its own ``init_cfg`` for pretrained weights).

    Attributes:
        cls_channels (tuple[int]): Channels of A3, A4, A5.
        seg_channels (tuple[int]): Channels of B's outputs.
    """

    def __init__(self,
                 cls_branch: ConfigType,
                 seg_branch: ConfigType,
                 shared_stages: int = 2,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.cls_branch = MODELS.build(cls_branch)
        self.seg_branch = MODELS.build(seg_branch)
        self.cls_stages = branch_stages(self.cls_branch)
        seg_stages = branch_stages(self.seg_branch)
        if not 0 < shared_stages < min(
                len(self.cls_stages) - 2, len(seg_stages)):
            raise ValueError(
                f'shared_stages must leave three stages of branch A and one '
                f'of branch B, got {shared_stages}')
        self.shared_stages = shared_stages
        self.seg_stages = seg_stages[shared_stages:]
        self._drop_unused(self.cls_branch, self.cls_stages)
        self._drop_unused(self.seg_branch, self.seg_stages)
        self.cls_channels, self.seg_channels = self._probe_channels()

    @staticmethod
    def _drop_unused(net: nn.Module, stages: List[Stage]) -> None:
        """Delete the submodules with parameters no stage uses."""
        used = {op.split(':')[0].split('.')[0] for s in stages for op in s}
        for name, child in list(net.named_children()):
            if name not in used and any(True for _ in child.parameters()):
                delattr(net, name)

    @torch.no_grad()
    def _probe_channels(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """Output channels of both branches, from a small forward in eval
        mode (no batch-norm statistics change)."""
        training = self.training
        self.eval()
        feats = self.forward(torch.zeros(1, 3, 64, 64))
        self.train(training)
        return (tuple(f.shape[1] for f in feats['cls']),
                tuple(f.shape[1] for f in feats['seg']))

    @staticmethod
    def _run(net: nn.Module, stage: Stage, x: Tensor) -> Tensor:
        for op in stage:
            name, _, act = op.partition(':')
            module = net
            for part in name.split('.'):
                module = getattr(module, part)
            x = module(x)
            if act == 'relu':
                x = F.relu(x)
        return x

    def forward(self, x: Tensor) -> Dict[str, Tuple[Tensor, ...]]:
        """(B, 3, H, W) images to ``cls`` (A3, A4, A5) and ``seg`` (B's
        outputs, B3 first, the deepest last)."""
        for stage in self.cls_stages[:self.shared_stages]:
            x = self._run(self.cls_branch, stage, x)
        a, cls_outs = x, []
        for stage in self.cls_stages[self.shared_stages:]:
            a = self._run(self.cls_branch, stage, a)
            cls_outs.append(a)
        b, seg_outs = x, []
        for stage in self.seg_stages:
            b = self._run(self.seg_branch, stage, b)
            seg_outs.append(b)
        return dict(cls=tuple(cls_outs[-3:]), seg=tuple(seg_outs))
