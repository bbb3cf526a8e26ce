# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..postprocess import fuse_mean_with_bg_power
from ..utils import merge_cfg
from ..wsss import (PAMR, mask_class_scores, mask_outside_box,
                    masks_to_pseudo_label, present_classes)
from .wsss_segmentor import WSSSSegmentor


@MODELS.register_module()
class SingleStageSegmentor(WSSSSegmentor):
    """1Stage (Araslanov and Roth, CVPR 2020): segmentation from image labels
    in one network and one training run.

    .. code:: text

        image -> backbone -> (conv3, conv6) -> SingleStageHead -> logits
        logits + constant background logit -> softmax masks m
          -> nGWP (Eq. 3) + focal mask penalty (Eq. 5) -> class scores
             -> multi-label soft-margin loss (loss_cls)
          -> (after train_cfg.seg_start_iter) PAMR(image, m.detach())
             -> upsample, absent classes zeroed -> relative thresholds
             -> pseudo label -> class-balanced CE (loss_seg)

    The segmentation loss is off for the first ``seg_start_iter``
    iterations (the classification-only pretraining; read from mmengine's
    MessageHub, so it survives ``--resume``).

    Inference (``test_cfg``): the softmax masks of every scale in ``scales``
    (and its flip) are averaged, the background channel raised to
    ``bg_pow``, and the foreground channels of classes whose image
    confidence (sigmoid of the class score, max over the views) is not above
    ``fp_cut`` are zeroed (:func:`fuse_mean_with_bg_power`); ``seg_logits``
    hold that map, which ``tools/test.py --crf`` refines with
    ``test_cfg.crf``. ``cls_source='gt'`` uses the ground-truth image labels
    instead of the predicted presence (the code's ``USE_GT_LABELS``, its
    Table 2 and "-clean" masks): **not a fair evaluation** of a WSSS model,
    only a way to score pseudo labels on a training split
    (``tools/test.py --pseudo-labels`` sets it).

    :meth:`visual_maps`: the foreground masks ('cam') and their pseudo
    label before and after PAMR.

    Args:
        backbone (dict): Backbone returning (stride-4 skip, deep features),
            e.g. :class:`WideResNet38`.
        decode_head (dict): :class:`SingleStageHead` config.
        loss_cls (dict): Classification loss on the class scores. Defaults to
            the multi-label soft-margin loss (mmseg's sigmoid cross-entropy
            averaged over classes and images).
        loss_seg (dict): :class:`ClassBalancedCELoss` config.
        class_scores (dict): ``bg_logit`` (1), ``focal_p`` (3),
            ``focal_lambda`` (0.01), ``ngwp_eps`` (1).
        train_cfg (dict): ``seg_start_iter``, ``pamr`` (:class:`PAMR`
            arguments), ``pseudo_label`` (:func:`masks_to_pseudo_label`
            arguments).
        test_cfg (dict): ``scales``, ``flip``, ``bg_pow``, ``fp_cut``,
            ``cls_source`` ('pred' | 'gt'), ``pad_size`` (optional (H, W)
            canvas every view is centred on, the code's ``PAD_SIZE``),
            ``crf``.
        data_preprocessor (dict): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    DEFAULT_CLASS_SCORES = dict(
        bg_logit=1.0, focal_p=3.0, focal_lambda=0.01, ngwp_eps=1.0)
    DEFAULT_TRAIN_CFG = dict(
        seg_start_iter=3305,  # 5 epochs of VOC train_aug at batch 16
        gate_rule='from',  # the code: mask loss when epoch >= PRETRAIN
        pamr=dict(num_iter=10, dilations=(1, 2, 4, 8, 12, 24)),
        pseudo_label=dict(fg_ratio=0.6, bg_ratio=0.7, min_thr=0.2))
    VISUAL_MAP_TITLES = dict(
        cam='mask',
        label_raw='label before PAMR',
        label_refined='label after PAMR')
    DEFAULT_TEST_CFG = dict(
        WSSSSegmentor.DEFAULT_TEST_CFG,
        scales=(1.0, 0.5, 1.5, 2.0),
        flip=True,
        bg_pow=3.0,
        fp_cut=0.1,
        cls_source='pred',
        pad_size=None)

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     avg_non_ignore=True,
                     loss_weight=1.0,
                     loss_name='loss_cls'),
                 loss_seg: ConfigType = dict(type='ClassBalancedCELoss'),
                 class_scores: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_seg = MODELS.build(loss_seg)
        self.num_classes = self.decode_head.num_classes
        self.align_corners = False
        self.class_scores = merge_cfg(self.DEFAULT_CLASS_SCORES, class_scores,
                                      'class_scores')
        self.pamr = PAMR(**self.train_cfg.pamr)

    # ------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone features (stride-4 skip, deep features)."""
        return tuple(self.backbone(inputs))

    def forward_masks(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Logits, masks and class scores of a batch.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.

        Returns:
            tuple[Tensor]: ``logits`` (B, C, H/4, W/4) with the constant
            background logit first, ``masks`` = their softmax, and
            ``cls_scores`` (B, C-1) (nGWP + focal mask penalty).
        """
        fg_logits = self.decode_head(self.extract_feat(inputs))
        return mask_class_scores(fg_logits, **self.class_scores)

    @torch.no_grad()
    def pseudo_label(self,
                     inputs: Tensor,
                     masks: Tensor,
                     cls_label: Tensor,
                     img_box: Optional[Sequence] = None,
                     refine: bool = True) -> Tensor:
        """PAMR-refined pseudo label of the input crops.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            masks (Tensor): (B, C, h, w) softmax masks (background first).
            cls_label (Tensor): (B, C-1) image-level labels.
            img_box (Sequence, optional): Per image ``[h0, h1, w0, w1]`` of
                the un-padded region; outside it the label is ignore.
            refine (bool): Run PAMR; False gives the label of the masks
                themselves (pictures). Defaults to True.

        Returns:
            Tensor: (B, H, W) int64 labels (255 = ignore).
        """
        refined = masks.detach()
        if refine:
            refined = self.pamr(self.images_01(inputs), refined)
        refined = F.interpolate(
            refined,
            size=inputs.shape[-2:],
            mode='bilinear',
            align_corners=True)
        # Classes absent from the image never enter the pseudo label.
        refined[:, 1:] *= cls_label[:, :, None, None].to(refined)
        label = masks_to_pseudo_label(refined, **self.train_cfg.pseudo_label)
        if img_box is not None and any(b is not None for b in img_box):
            label = mask_outside_box(label, img_box)
        return label

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """Classification loss, and the self-supervised segmentation loss
        after the pretraining iterations."""
        cls_label = self.cls_labels(data_samples, inputs)
        logits, masks, cls_scores = self.forward_masks(inputs)
        # mmseg's sigmoid CE squeezes a one-class prediction to (B,).
        target = cls_label.squeeze(1) if cls_label.shape[1] == 1 else cls_label
        losses = {self.loss_cls.loss_name: self.loss_cls(cls_scores, target)}
        if self.gate_open(self.train_cfg.seg_start_iter):
            label = self.pseudo_label(inputs, masks, cls_label,
                                      self.img_boxes(data_samples))
            losses[self.loss_seg.loss_name] = self.loss_seg(
                logits, label, cls_label)
        else:
            # Logged as 0 during the classification-only pretraining.
            losses[self.loss_seg.loss_name] = logits.sum() * 0.
        return losses

    def _pseudo_labels(self, inputs: Tensor,
                       data_samples: SampleList) -> Tensor:
        if not self.gate_open(self.train_cfg.seg_start_iter):
            return self.ignore_labels(inputs)
        _, masks, _ = self.forward_masks(inputs)
        return self.pseudo_label(inputs, masks,
                                 self.cls_labels(data_samples, inputs),
                                 self.img_boxes(data_samples))

    def _visual_maps(self, inputs: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        """'cam': the foreground masks at the input size (as the pseudo
        label sees them), 'label_raw' / 'label_refined': their pseudo
        label before / after PAMR."""
        cls_label = self.cls_labels(data_samples, inputs)
        img_box = self.img_boxes(data_samples)
        _, masks, _ = self.forward_masks(inputs)
        cam = F.interpolate(
            masks[:, 1:],
            size=inputs.shape[-2:],
            mode='bilinear',
            align_corners=True)
        return dict(
            cam=cam,
            label_raw=self.pseudo_label(
                inputs, masks, cls_label, img_box, refine=False),
            label_refined=self.pseudo_label(inputs, masks, cls_label, img_box))

    # ------------------------------------------------------------------
    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Mask logits (B, C, H/4, W/4), background first."""
        return self.forward_masks(inputs)[0]

    def _view_masks(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """One test view: softmax masks at the view's size, class scores.

        With ``test_cfg.pad_size`` the view is first centred on a canvas of
        that size filled with 0 (the mean colour after normalisation), as the
        code's test loader does; the class scores then see the canvas, and
        the masks are cut back to the view.
        """
        H, W = x.shape[-2:]
        pad_size = self.test_cfg.pad_size
        top = left = 0
        if pad_size:
            ph, pw = max(pad_size[0] - H, 0), max(pad_size[1] - W, 0)
            top, left = ph // 2, pw // 2
            x = F.pad(x, [left, pw - left, top, ph - top], value=0.)
        _, masks, cls_scores = self.forward_masks(x)
        masks = F.interpolate(
            masks, size=x.shape[-2:], mode='bilinear', align_corners=True)
        return masks[..., top:top + H, left:left + W], cls_scores

    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        """Fused (B, C, H, W) masks of ``test_cfg`` (see the class doc)."""
        cfg = self.test_cfg
        cls_label = None
        if cfg.cls_source == 'gt':
            cls_label = present_classes('gt', data_samples).to(inputs)
        return fuse_mean_with_bg_power(
            self._view_masks,
            inputs,
            scales=cfg.scales,
            flip=cfg.flip,
            bg_pow=cfg.bg_pow,
            fp_cut=cfg.fp_cut,
            cls_label=cls_label,
            align_corners=self.align_corners)
