# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..wsss import cam_from_weights, pool_features, stack_cls_labels


@MODELS.register_module()
class CAMClsHead(BaseModule):
    """Multi-label classifier whose weights give class activation maps.

    ``logits = W * pool(feat)`` with a bias-free 1x1 convolution ``W`` of
    ``num_classes - 1`` outputs (background has no classifier), so the raw
    CAM of class ``c`` is ``W_c * feat`` at every location. The loss is the
    multi-label soft-margin loss, i.e. mmseg's sigmoid cross-entropy
    averaged over classes and images.

    Args:
        in_channels (int): Feature channels D.
        num_classes (int): Classes including background (C + 1).
        pooling (str): 'gap' or 'gmp'. Defaults to 'gap'.
        in_index (int): Which backbone output to use. Defaults to -1.
        dropout (float): Channel dropout (``Dropout2d``) on the features
            before pooling, in training only (RRM / ASDT: 0.5). The CAMs are
            computed without it. Defaults to 0.
        loss_cls (dict): Loss config. Defaults to sigmoid cross-entropy named
            ``loss_cls``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        pooling: str = 'gap',
        in_index: int = -1,
        dropout: float = 0.,
        loss_cls: ConfigType = dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            avg_non_ignore=True,
            loss_weight=1.0,
            loss_name='loss_cls'),
        init_cfg: OptMultiConfig = dict(
            type='Normal', layer='Conv2d', std=0.01)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 2:
            raise ValueError('num_classes counts background and at least one '
                             f'object class, got {num_classes}')
        if pooling not in ('gap', 'gmp'):
            raise ValueError(f'pooling must be "gap" or "gmp", got {pooling}')
        if not 0. <= dropout < 1.:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.pooling = pooling
        self.in_index = in_index
        # No module when off: checkpoints and parameter counts stay as they
        # were.
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else None
        self.classifier = nn.Conv2d(
            in_channels, num_classes - 1, kernel_size=1, bias=False)
        self.loss_cls = MODELS.build(loss_cls)

    def _select(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        return feats if isinstance(feats, Tensor) else feats[self.in_index]

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """(B, D, h, w) features (or a tuple of them) to (B, C) logits."""
        feat = self._select(feats)
        if self.dropout is not None:
            feat = self.dropout(feat)
        pooled = pool_features(feat, self.pooling)
        return self.classifier(pooled).flatten(1)

    def cam(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Raw CAMs (B, C, h, w) from the classifier weights."""
        return cam_from_weights(self._select(feats), self.classifier.weight)

    def loss_by_feat(self, logits: Tensor,
                     batch_data_samples: List) -> Dict[str, Tensor]:
        """Multi-label soft-margin loss against ``gt_cls_label``."""
        target = stack_cls_labels(batch_data_samples).to(logits)
        if target.shape[1] == 1:
            # mmseg's sigmoid CE squeezes a single-class prediction to (B,).
            target = target.squeeze(1)
        return {self.loss_cls.loss_name: self.loss_cls(logits, target)}

    def loss(self, feats: Union[Tensor, Sequence[Tensor]],
             batch_data_samples: List) -> Dict[str, Tensor]:
        return self.loss_by_feat(self.forward(feats), batch_data_samples)
