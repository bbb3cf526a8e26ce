# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, SampleList)
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
                         ├ aux tokens ─── GMP aux classifier (aux_cls_head)
                         └ class token (+ final tokens) ─ proj_head (DINO)

    The optional projector ``proj_head`` (a :class:`DINOHead`) maps class
    tokens (ToCo's class-token contrast, :meth:`project_cls`) or all tokens
    (FSR, :meth:`project_tokens`) to the space the self-distillation losses
    compare in.

    Args:
        backbone (dict): :class:`WSSSViT` config (returns the final token
            map, the auxiliary token map and the class token).
        cls_head (dict): :class:`CAMClsHead` on the final tokens
            (``in_index=0``).
        aux_cls_head (dict): :class:`CAMClsHead` on the auxiliary tokens
            (``in_index=1``).
        decode_head (dict): :class:`LargeFOVHead` config.
        proj_head (dict, optional): :class:`DINOHead` config (ToCo CTC:
            1024-way; FSR: 4096-way). Defaults to None (no projector).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 cls_head: ConfigType,
                 aux_cls_head: ConfigType,
                 decode_head: ConfigType,
                 proj_head: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.cls_head = MODELS.build(cls_head)
        self.aux_cls_head = MODELS.build(aux_cls_head)
        self.decode_head = MODELS.build(decode_head)
        self.proj_head = MODELS.build(proj_head) if proj_head else None
        self.num_classes = self.decode_head.num_classes
        self.align_corners = self.decode_head.align_corners

    def extract_feat(
            self,
            inputs: Tensor,
            mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """(final map (B, D, h, w), aux map (B, D, h, w), class token).

        ``mask`` (B, h*w) bool replaces masked patch embeddings by the
        backbone's mask token (FSR).
        """
        if mask is None:
            return self.backbone(inputs)
        return self.backbone(inputs, mask=mask)

    def forward(
            self,
            inputs: Tensor,
            mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """The backbone features (:meth:`extract_feat`); an EMA teacher of
        the network runs this."""
        return self.extract_feat(inputs, mask)

    def _check_proj_head(self) -> None:
        if self.proj_head is None:
            raise RuntimeError('this network has no proj_head: add a '
                               'DINOHead config as network.proj_head')

    def project_cls(self, cls_token: Tensor) -> Tensor:
        """(B, K) projected class tokens (ToCo's CTC head)."""
        self._check_proj_head()
        return self.proj_head(cls_token)

    def project_tokens(self, feats: Tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """(B, 1 + h*w, K) projection of the class token followed by the
        final patch tokens in raster order (FSR's projector on all tokens).
        """
        self._check_proj_head()
        final_map, _, cls_token = feats
        tokens = torch.cat(
            [cls_token[:, None],
             final_map.flatten(2).transpose(1, 2)], dim=1)
        return self.proj_head(tokens)

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
        return self._both_cams_of(self.extract_feat(inputs))

    def _both_cams_of(self, feats: Tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """:meth:`_both_cams` from features already extracted."""
        return torch.cat(
            [self.cls_head.cam(feats),
             self.aux_cls_head.cam(feats)], dim=1)

    @torch.no_grad()
    def training_cams(
        self,
        inputs: Tensor,
        scales: Sequence[float],
        feats: Optional[Tuple[Tensor, Tensor, Tensor]] = None
    ) -> Tuple[Tensor, Tensor]:
        """Normalised multi-scale + flip (final, aux) CAMs (B, C-1, H, W).

        Computed in the network's current mode (train mode during training,
        as the code), one pass per view for both classifiers. ``feats``:
        the training forward's features of ``inputs``, whose CAMs then stand
        for the unflipped scale-1.0 view (one backbone pass fewer; only
        where that forward is deterministic, see
        :meth:`ToCoSegmentor.training_cams`).
        """
        cams = multi_scale_cam(
            self._both_cams,
            inputs,
            scales=scales,
            flip=True,
            align_corners=self.align_corners,
            first_view=None if feats is None else self._both_cams_of(feats))
        return cams.chunk(2, dim=1)
