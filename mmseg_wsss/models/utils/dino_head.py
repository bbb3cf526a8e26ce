# Copyright (c) OpenMMLab. All rights reserved.
"""The DINO projection head of ToCo's CTC and FSR's self-distillation."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor
from torch.nn.utils.parametrizations import weight_norm

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class DINOHead(BaseModule):
    """MLP -> L2 normalisation -> weight-normalised linear (DINO's head).

    official_code_notes 1.6 (ToCo ``CTCHead``, ``out_dim=1024``) and 3
    (FSR ``models/projector.py``, ``out_dim=4096``)::

        in_dim -> Linear -> GELU -> Linear -> GELU -> Linear -> bottleneck
               (hidden)            (hidden)            (256)
        -> F.normalize(dim=-1) -> WeightNorm(Linear(256, out_dim, no bias))

    The weight-norm magnitude ``g`` is filled with 1 and frozen
    (``norm_last_layer=True``, both codes), so each output is the cosine
    between the normalised bottleneck and a row of the last weight, in
    [-1, 1]. There is no norm layer and no dropout in the MLP.

    Initialisation (in ``__init__``, so a deep-copied EMA teacher starts
    equal): the MLP's linears ``trunc_normal_(std=0.02)`` with zero bias,
    the last layer PyTorch's default ``nn.Linear`` init before weight norm
    (the codes apply their init before creating it).

    Weight norm is ``torch.nn.utils.parametrizations.weight_norm``
    (``nn.utils.weight_norm`` is deprecated): the state-dict keys are
    ``last_layer.parametrizations.weight.original0`` (``g``, (out_dim, 1))
    and ``...original1`` (``v``, (out_dim, bottleneck_dim)), the codes'
    ``last_layer.weight_g`` / ``weight_v``.

    Args:
        in_dim (int): Input token dimension (ViT-B: 768).
        out_dim (int): Output dimension (FSR 4096, ToCo CTC 1024).
            Defaults to 4096.
        hidden_dim (int): Hidden width of the MLP. Defaults to 2048.
        bottleneck_dim (int): Width before the L2 normalisation. Defaults to
            256.
        num_layers (int): Linear layers in the MLP (>= 1; 1: a single
            ``Linear(in_dim, bottleneck_dim)``). Defaults to 3.
        norm_last_layer (bool): Freeze ``g`` at 1. Defaults to True.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_dim: int,
                 out_dim: int = 4096,
                 hidden_dim: int = 2048,
                 bottleneck_dim: int = 256,
                 num_layers: int = 3,
                 norm_last_layer: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        self.in_dim = in_dim
        self.out_dim = out_dim
        if num_layers == 1:
            self.mlp = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
            for _ in range(num_layers - 2):
                layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                nn.init.constant_(m.bias, 0)
        self.last_layer = weight_norm(
            nn.Linear(bottleneck_dim, out_dim, bias=False))
        g = self.last_layer.parametrizations.weight.original0
        g.data.fill_(1.)
        if norm_last_layer:
            g.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        """Project tokens.

        Args:
            x (Tensor): (..., in_dim) tokens, e.g. (B, D) class tokens or
                (B, 1 + N, D) all tokens (FSR projects class and patch
                tokens with the same head).

        Returns:
            Tensor: (..., out_dim) logits.
        """
        x = self.mlp(x)
        x = F.normalize(x, dim=-1, p=2)
        return self.last_layer(x)
