# Copyright (c) OpenMMLab. All rights reserved.
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..postprocess import CRFPostProcessor, fuse_mean_over_views
from ..wsss import (mask_outside_box, multi_scale_cam, rrm_crf_inputs,
                    rrm_label_from_crf)
from .wsss_segmentor import WSSSSegmentor


@MODELS.register_module()
class RRMSegmentor(WSSSSegmentor):
    """RRM (Zhang et al., AAAI 2020): reliable region mining, one network
    trained end to end from image labels (official_code_notes 5.1).

    .. code:: text

        image -> backbone (frozen BN) -> conv6 features
          -> cls_head (Dropout2d, GAP, 1x1 conv) -> loss_cls
          -> CAMs (classifier weights) at cam_scales, no gradient, merged
             on the scale-1 feature grid, up to the crop, label-masked,
             max-normalised
             -> reliable label (two dense CRFs, rrm_reliable_label)
          -> decode_head (two 3x3 dilation-12 convs) -> logits
             -> loss_seg (CE over background + CE over foreground pixels)
             -> loss_energy (dense CRF energy of the softmax, rloss)

    The reliable label's CRFs run on the CPU, per image, over the worker
    processes of ``train_cfg.crf.workers`` (one blocking batch call,
    :meth:`CRFPostProcessor.refine_probs`); the seconds they take are logged
    as ``time_crf`` beside mmengine's step ``time``.

    Inference (``test_cfg``): the softmax of the segmentation head,
    averaged over ``scales`` (and flips); the code tests at one scale
    without flip, then the CRF of ``test_cfg.crf`` (preset 'rrm').

    Args:
        backbone (dict): Backbone config (WideResNet-38 on VOC, the toy
            ResNet-18 on the toy set); its last output is conv6.
        cls_head (dict): :class:`CAMClsHead` (``dropout=0.5``): the class
            teacher, whose weights give the CAMs.
        decode_head (dict): :class:`RRMSegHead`.
        loss_seg (dict): :class:`BgFgSegLoss`; the code sums the two
            cross-entropies: ``loss_weight=2.0`` (the loss averages them).
        loss_energy (dict, optional): :class:`DenseEnergyLoss` (weight 1e-7,
            sigma_rgb 15, sigma_xy 100, scale 0.5).
        train_cfg (dict): ``cam_scales`` (1.0, 0.5, 1.5, 2.0);
            ``reliable_label`` (:func:`rrm_reliable_label` arguments);
            ``crf`` (:class:`CRFPostProcessor` arguments of the label CRF:
            preset '1stage' = Gaussian 3/3, bilateral 80/13/10; ``workers``;
            ``backend`` 'torch' and ``device`` run them batched in PyTorch);
            ``ignore_padding`` (False: the code labels the zero-padded part
            of a crop like the rest; True: ignore it).
        test_cfg (dict): ``scales``, ``flip``, ``crf``.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    DEFAULT_TRAIN_CFG = dict(
        cam_scales=(1.0, 0.5, 1.5, 2.0),
        reliable_label=dict(
            bg_power=32,
            crf_powers=(4, 32),
            percentile=0.6,
            min_cam=0.1,
            bg_sure_thr=0.8,
            crf_sure_thr=0.8),
        crf=dict(
            preset='1stage',
            xy_scale=1.0,
            workers=2,
            backend='pydensecrf',
            device='cpu'),
        ignore_padding=False,
        gate_rule='from')
    DEFAULT_TEST_CFG = dict(
        WSSSSegmentor.DEFAULT_TEST_CFG, scales=(1.0, ), flip=False)
    VISUAL_MAP_TITLES = dict(
        cam='CAM', label_raw='CAM label', label_refined='reliable label')
    # CAM normalisation epsilon of the code (``np.max(...) + 1e-5``).
    CAM_EPS = 1e-5

    def __init__(self,
                 backbone: ConfigType,
                 cls_head: ConfigType,
                 decode_head: ConfigType,
                 loss_seg: ConfigType = dict(
                     type='BgFgSegLoss', loss_weight=2.0),
                 loss_energy: OptConfigType = dict(
                     type='DenseEnergyLoss',
                     loss_weight=1.0,
                     weight=1e-7,
                     sigma_rgb=15.0,
                     sigma_xy=100.0,
                     scale_factor=0.5),
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
        self.cls_head = MODELS.build(cls_head)
        self.decode_head = MODELS.build(decode_head)
        if self.cls_head.num_classes != self.decode_head.num_classes:
            raise ValueError(
                f'cls_head has {self.cls_head.num_classes} classes, '
                f'decode_head {self.decode_head.num_classes}')
        self.num_classes = self.decode_head.num_classes
        self.loss_seg = MODELS.build(loss_seg)
        self.loss_energy = MODELS.build(loss_energy) if loss_energy else None
        self.align_corners = False
        self.label_crf = CRFPostProcessor(**self.train_cfg.crf)

    # Network -----------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """The deepest backbone features (B, D, h, w) (conv6)."""
        feats = self.backbone(inputs)
        return feats[-1] if isinstance(feats, (list, tuple)) else feats

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Segmentation logits (B, K, h, w) at the feature stride."""
        return self.decode_head(self.extract_feat(inputs))

    # Reliable label ----------------------------------------------------
    @torch.no_grad()
    def label_cams(self,
                   inputs: Tensor,
                   cls_label: Tensor,
                   feat: Optional[Tensor] = None) -> Tensor:
        """The CAMs the reliable label is computed from.

        Raw CAMs at every scale of ``train_cfg.cam_scales`` (ReLU-ed),
        resized to the scale-1 feature grid and averaged, upsampled to the
        crop (bilinear), absent classes zeroed, each map divided by its
        maximum (+1e-5), as the code's ``SegNet`` and ``compute_cam_up``.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised crops.
            cls_label (Tensor): (B, C) image labels.
            feat (Tensor, optional): The training forward's features of
                ``inputs``: the scale-1 CAM reuses them (exact, the batch
                norms being frozen).

        Returns:
            Tensor: (B, C, H, W) CAMs in [0, 1).
        """
        if feat is None:
            feat = self.extract_feat(inputs)

        def cam_fn(x: Tensor) -> Tensor:
            # Rectified before the resize, as the code (multi_scale_cam's
            # ReLU after it is then a no-op).
            return F.relu(self.cls_head.cam(self.extract_feat(x)))

        scales = self.train_cfg.cam_scales
        cam = multi_scale_cam(
            cam_fn,
            inputs,
            scales=scales,
            flip=False,
            scale_merge='sum',
            normalize=False,
            align_corners=self.align_corners,
            out_size=tuple(feat.shape[-2:]),
            first_view=F.relu(self.cls_head.cam(feat))) / len(scales)
        cam = F.interpolate(
            cam.float(),
            size=inputs.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners)
        cam = cam * cls_label[:, :, None, None].to(cam)
        return cam / (cam.amax(dim=(-2, -1), keepdim=True) + self.CAM_EPS)

    @torch.no_grad()
    def reliable_labels(self, inputs: Tensor, cams: Tensor, cls_label: Tensor,
                        img_box: List) -> Tensor:
        """RRM's reliable labels of a batch (:func:`rrm_reliable_label`).

        The two CRFs of every image go through the label CRF's worker pool
        in one blocking call.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised crops.
            cams (Tensor): (B, C, H, W) :meth:`label_cams`.
            cls_label (Tensor): (B, C) image labels.
            img_box (list): Per image ``[h0, h1, w0, w1]`` or None.

        Returns:
            Tensor: (B, H, W) int64 labels (255: unsure).
        """
        cfg = self.train_cfg.reliable_label
        images = self.crf_images(inputs)
        cams_np = cams.float().cpu().numpy()
        labels_np = cls_label.float().cpu().numpy()
        crf_inputs = [
            rrm_crf_inputs(c, y, cfg.crf_powers)
            for c, y in zip(cams_np, labels_np)
        ]
        outputs = self.label_crf.refine_probs(
            [img for img, ins in zip(images, crf_inputs) for _ in ins],
            [scores for ins in crf_inputs for scores in ins])
        labels, start = [], 0
        for c, y, ins in zip(cams_np, labels_np, crf_inputs):
            labels.append(
                rrm_label_from_crf(
                    c,
                    y,
                    outputs[start:start + len(ins)],
                    bg_power=cfg.bg_power,
                    percentile=cfg.percentile,
                    min_cam=cfg.min_cam,
                    bg_sure_thr=cfg.bg_sure_thr,
                    crf_sure_thr=cfg.crf_sure_thr))
            start += len(ins)
        label = torch.from_numpy(np.stack(labels)).to(inputs.device)
        return self.mask_padding(label, img_box)

    def mask_padding(self, label: Tensor, img_box: List) -> Tensor:
        """Ignore outside the valid box when ``train_cfg.ignore_padding``."""
        if self.train_cfg.ignore_padding:
            return mask_outside_box(label, img_box)
        return label

    # Training ----------------------------------------------------------
    def seg_losses(self,
                   inputs: Tensor,
                   logits: Tensor,
                   label: Tensor,
                   img_box: List,
                   suffix: str = '') -> Dict[str, Tensor]:
        """``loss_seg`` (and ``loss_energy``) of one segmentation head.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised crops.
            logits (Tensor): (B, K, h, w) the head's logits.
            label (Tensor): (B, H, W) its label.
            img_box (list): Per image valid box (the energy's ROI).
            suffix (str): Appended to the loss names (a second head).

        Returns:
            dict[str, Tensor]: The losses.
        """
        losses = {
            self.loss_seg.loss_name + suffix: self.loss_seg(logits, label)
        }
        if self.loss_energy is not None:
            losses[self.loss_energy.loss_name + suffix] = self.energy_loss(
                inputs, logits, label, img_box)
        return losses

    def class_teacher(
            self, inputs: Tensor, data_samples: SampleList
    ) -> Tuple[Tensor, Dict[str, Tensor], Tensor]:
        """Features, the classification loss and the reliable label of a
        batch (the part RRM and ASDT share).

        Returns:
            tuple: ``feat`` (B, D, h, w), ``losses`` (``loss_cls``,
            ``time_crf``) and the reliable label (B, H, W).
        """
        cls_label = self.cls_labels(data_samples, inputs)
        feat = self.extract_feat(inputs)
        logits = self.cls_head(feat)
        target = cls_label.squeeze(1) if cls_label.shape[1] == 1 else cls_label
        losses = {
            self.cls_head.loss_cls.loss_name:
            self.cls_head.loss_cls(logits, target)
        }
        cams = self.label_cams(inputs, cls_label, feat.detach())
        start = time.perf_counter()
        label = self.reliable_labels(inputs, cams, cls_label,
                                     self.img_boxes(data_samples))
        # Logged beside the step time (not a loss: no 'loss' in the name).
        losses['time_crf'] = torch.tensor(
            time.perf_counter() - start, device=inputs.device)
        return feat, losses, label

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """Classification loss, and segmentation and energy losses against
        the reliable label."""
        feat, losses, label = self.class_teacher(inputs, data_samples)
        losses.update(
            self.seg_losses(inputs, self.decode_head(feat), label,
                            self.img_boxes(data_samples)))
        return losses

    def _pseudo_labels(self, inputs: Tensor,
                       data_samples: SampleList) -> Tensor:
        cls_label = self.cls_labels(data_samples, inputs)
        return self.reliable_labels(inputs, self.label_cams(inputs, cls_label),
                                    cls_label, self.img_boxes(data_samples))

    def _visual_maps(self, inputs: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        """'cam' (:meth:`label_cams`), 'label_raw' (their argmax against
        ``(1 - max CAM)^32``, the code's ``cam_img``) and 'label_refined'
        (the reliable label)."""
        cls_label = self.cls_labels(data_samples, inputs)
        cams = self.label_cams(inputs, cls_label)
        bg = (1 - cams.amax(dim=1, keepdim=True)).pow(
            self.train_cfg.reliable_label.bg_power)
        raw = torch.cat([bg, cams], dim=1).argmax(dim=1)
        img_box = self.img_boxes(data_samples)
        return dict(
            cam=cams,
            label_raw=mask_outside_box(raw, img_box),
            label_refined=self.reliable_labels(inputs, cams, cls_label,
                                               img_box))

    # Inference ---------------------------------------------------------
    def head_probs(self, inputs: Tensor) -> Dict[str, Tensor]:
        """Softmax of each segmentation head at the input size."""
        logits = self._forward(inputs)
        return dict(
            seg=F.interpolate(
                logits,
                size=inputs.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners).softmax(dim=1))

    def fuse_heads(self, probs: Dict[str, Tensor]) -> Tensor:
        """The test-time map of the heads' probabilities."""
        return probs['seg']

    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        """(B, K, H, W) probabilities (see the class doc)."""
        return fuse_mean_over_views(
            lambda x: self.fuse_heads(self.head_probs(x)),
            inputs,
            scales=self.test_cfg.scales,
            flip=self.test_cfg.flip,
            align_corners=self.align_corners)
