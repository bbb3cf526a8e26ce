# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

GROUPS = ('pretrained_weight', 'pretrained_bias', 'new_weight', 'new_bias')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class PretrainedNewOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Four parameter groups: pretrained / new x weights / biases.

    The scheme of AffinityNet and 1Stage (``parameter_groups`` of their
    base networks, official_code_notes 4): every trainable parameter of a
    module whose name starts with one of ``new_prefixes`` is "new" (trained
    from scratch), every other one "pretrained"; a parameter named ``bias``
    (convolution or normalisation) is a bias, anything else a weight. Each
    group has its own LR and weight-decay multiplier. mmengine's
    ``custom_keys`` cannot express this (a matched key overrides the bias
    rules, and normalisation biases are excluded from ``bias_lr_mult``).
    Parameters with ``requires_grad=False`` (frozen layers) are left out,
    as the code does.

    ``paramwise_cfg`` keys:

    - ``new_prefixes`` (Sequence[str]): e.g. ``('decode_head', )``.
    - ``lr_mult`` (Sequence[float]): multipliers of the groups in the order
      (pretrained weight, pretrained bias, new weight, new bias).
      Defaults to (1, 2, 10, 20) (1Stage WideResNet-38 and VGG-16;
      its ResNets use (1, 1, 10, 10)).
    - ``decay_mult`` (Sequence[float]): same order. Defaults to (1, 0, 1, 0)
      (no weight decay on biases, as the code).
    - ``flat_no_decay`` (bool): every 1-D parameter (norm weights too)
      joins the bias groups. Defaults to False. FSR (and timm/DeiT
      optimisers): ``name.endswith('.bias') or len(shape) == 1``.
    - ``no_decay_keys`` (Sequence[str]): parameters whose name contains
      one of these join the bias groups, e.g. FSR's ``('pos_embed',
      'cls_token', 'mask_token')``. Defaults to ().

    Example::

        optim_wrapper = dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=1e-3, momentum=0.9,
                           weight_decay=5e-4),
            constructor='PretrainedNewOptimWrapperConstructor',
            paramwise_cfg=dict(new_prefixes=('decode_head', )))
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        self.new_prefixes = tuple(paramwise_cfg.pop('new_prefixes', ()))
        self.lr_mults = tuple(paramwise_cfg.pop('lr_mult', (1., 2., 10., 20.)))
        self.decay_mults = tuple(
            paramwise_cfg.pop('decay_mult', (1., 0., 1., 0.)))
        self.flat_no_decay = bool(paramwise_cfg.pop('flat_no_decay', False))
        self.no_decay_keys = tuple(paramwise_cfg.pop('no_decay_keys', ()))
        if paramwise_cfg:
            raise KeyError(f'unsupported paramwise_cfg keys: '
                           f'{sorted(paramwise_cfg)}')
        if len(self.lr_mults) != 4 or len(self.decay_mults) != 4:
            raise ValueError(f'lr_mult and decay_mult need 4 values {GROUPS}')
        if not self.new_prefixes:
            raise ValueError('paramwise_cfg.new_prefixes must name the '
                             'modules trained from scratch')
        # A non-empty paramwise_cfg makes the base class call add_params.
        super().__init__(optim_wrapper_cfg, dict(groups=GROUPS))

    def _validate_cfg(self) -> None:
        """Nothing to check beyond ``__init__``."""

    def group_of(self, name: str, ndim: int = 2) -> int:
        """Index into ``GROUPS`` of a full parameter name (and its number
        of dimensions, read with ``flat_no_decay``)."""
        new = any(name == p or name.startswith(p + '.')
                  for p in self.new_prefixes)
        bias = name.rsplit(
            '.', 1)[-1] == 'bias' or (self.flat_no_decay and ndim == 1) or any(
                k in name for k in self.no_decay_keys)
        return 2 * int(new) + int(bias)

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module=None) -> None:
        """Append the four groups (empty ones left out) to ``params``."""
        groups: Sequence[List] = ([], [], [], [])
        for name, param in module.named_parameters(prefix=prefix):
            if param.requires_grad:
                groups[self.group_of(name, param.ndim)].append(param)
        for i, group in enumerate(groups):
            if not group:
                continue
            entry = dict(params=group, lr=self.base_lr * self.lr_mults[i])
            if self.base_wd is not None:
                entry['weight_decay'] = self.base_wd * self.decay_mults[i]
            params.append(entry)
