# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.utils import ConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..wsss import multi_scale_cam


@MODELS.register_module()
class ToCoNetwork(BaseModule):
    """The network of ToCo and the methods built on it (DuPL, FSR).

    No gates, thresholds or schedules: only the forward passes the
    segmentor that owns it combines.

    .. code:: text

        image -> WSSSViT -> final tokens ─ GMP classifier (cls_head)
                         │                └ LargeFOV head (decode_head)
                         └ aux tokens ─── GMP aux classifier (aux_cls_head)

    Args:
        backbone (dict): :class:`WSSSViT` config (returns the final token
            map, the auxiliary token map and the class token).
        cls_head (dict): :class:`CAMClsHead` on the final tokens
            (``in_index=0``).
        aux_cls_head (dict): :class:`CAMClsHead` on the auxiliary tokens
            (``in_index=1``).
        decode_head (dict): :class:`LargeFOVHead` config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 cls_head: ConfigType,
                 aux_cls_head: ConfigType,
                 decode_head: ConfigType,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.cls_head = MODELS.build(cls_head)
        self.aux_cls_head = MODELS.build(aux_cls_head)
        self.decode_head = MODELS.build(decode_head)
        self.num_classes = self.decode_head.num_classes
        self.align_corners = self.decode_head.align_corners

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(final map (B, D, h, w), aux map (B, D, h, w), class token)."""
        return self.backbone(inputs)

    def seg_logits(self, inputs: Tensor) -> Tensor:
        """(B, C, h, w) segmentation logits at the token resolution."""
        return self.decode_head(self.extract_feat(inputs))

    def cls_logits(self, inputs: Tensor) -> Tensor:
        """(B, C-1) logits of the final classifier."""
        return self.cls_head(self.extract_feat(inputs))

    def cam(self, inputs: Tensor) -> Tensor:
        """(B, C-1, h, w) raw CAMs of the final classifier."""
        return self.cls_head.cam(self.extract_feat(inputs))

    def cls_losses(self, feats: Tuple[Tensor, Tensor, Tensor],
                   data_samples: SampleList) -> Dict[str, Tensor]:
        """Multi-label soft-margin losses of both classifiers."""
        losses = dict()
        for head in (self.cls_head, self.aux_cls_head):
            name = head.loss_cls.loss_name
            losses[name] = head.loss_by_feat(head(feats), data_samples)[name]
        return losses

    def _both_cams(self, inputs: Tensor) -> Tensor:
        """Raw final and aux CAMs stacked on the channel axis (N, 2C, h, w).
        """
        feats = self.extract_feat(inputs)
        return torch.cat(
            [self.cls_head.cam(feats),
             self.aux_cls_head.cam(feats)], dim=1)

    @torch.no_grad()
    def training_cams(self, inputs: Tensor,
                      scales: Sequence[float]) -> Tuple[Tensor, Tensor]:
        """Normalised multi-scale + flip (final, aux) CAMs (B, C-1, H, W).

        Computed in the network's current mode (train mode during training,
        as the code), one pass per view for both classifiers.
        """
        cams = multi_scale_cam(
            self._both_cams,
            inputs,
            scales=scales,
            flip=True,
            align_corners=self.align_corners)
        return cams.chunk(2, dim=1)
