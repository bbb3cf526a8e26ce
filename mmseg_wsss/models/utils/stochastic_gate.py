# Copyright (c) OpenMMLab. All rights reserved.
"""1Stage's Stochastic Gate (SG, paper Sec. 3.4, official_code_notes 4)."""
import torch
import torch.nn as nn
from torch import Tensor

from mmseg_wsss.registry import MODELS

GATE_MODES = ('code', 'paper')


@MODELS.register_module()
class StochasticGate(nn.Module):
    """Mixes deep and shallow features at random per element in training.

    With ``psi`` the mixing rate, deep features ``x_d`` and shallow ``x_s``
    (same shape), and an element-wise ``r ~ Bernoulli(psi)``:

    - ``mode='code'`` (default; the official code, which produced the
      published numbers): training ``out = (1 - r) * x_d' + r * x_s`` with
      ``x_d' = (x_d - psi * x_s) / (1 - psi)``, so the training mean is
      ``x_d``; test ``out = (1 - psi) * x_d + psi * x_s``. The test output
      is *not* the training mean.
    - ``mode='paper'`` (Eq. 9-10): training ``out = (1 - r) * x_d + r *
      x_s``; test ``(1 - psi) * x_d + psi * x_s``, the training mean.

    Parameter-free.

    Args:
        psi (float): Mixing rate in [0, 1). Defaults to 0.3.
        mode (str): 'code' or 'paper'. Defaults to 'code'.
    """

    def __init__(self, psi: float = 0.3, mode: str = 'code') -> None:
        super().__init__()
        if mode not in GATE_MODES:
            raise ValueError(f'mode must be one of {GATE_MODES}, got {mode!r}')
        if not 0. <= psi < 1.:
            raise ValueError(f'psi must be in [0, 1), got {psi}')
        self.psi = float(psi)
        self.mode = mode

    def extra_repr(self) -> str:
        return f'psi={self.psi}, mode={self.mode!r}'

    def forward(self, deep: Tensor, shallow: Tensor) -> Tensor:
        """Mix (B, C, H, W) deep and shallow features.

        Returns:
            Tensor: (B, C, H, W) mixed features.
        """
        if deep.shape != shallow.shape:
            raise ValueError(f'deep {tuple(deep.shape)} and shallow '
                             f'{tuple(shallow.shape)} must match')
        psi = self.psi
        if not self.training:
            return (1. - psi) * deep + psi * shallow
        if self.mode == 'code':
            # Rescaled so that E[out] = deep (the code's x1').
            deep = (deep - psi * shallow) / max(1e-8, 1. - psi)
        take_shallow = torch.rand_like(deep) < psi  # r ~ Bernoulli(psi)
        return torch.where(take_shallow, shallow, deep)
