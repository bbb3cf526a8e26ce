# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.config import ConfigDict
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..postprocess import fuse_max_over_scales
from ..utils import denormalize_images
from ..wsss import (PAR, cam_score_map, is_active, mask_outside_box,
                    multi_scale_cam, present_classes, ptc_label_from_cam,
                    refine_cams_with_bkg, stack_cls_labels)

DEFAULT_TRAIN_CFG = dict(
    cam_scales=(1.0, 0.5, 1.5),
    high_thr=0.7,
    low_thr=0.25,
    seg_start_iter=2000,
    ptc_start_iter=0,
    aux_label_end_iter=0,
    par=dict(dilations=(1, 2, 4, 8, 12, 24), num_iter=10, w1=0.3, w2=0.01))
DEFAULT_TEST_CFG = dict(
    mode='whole', output='seg', scales=(1.0, 1.25, 1.5), flip=True,
    bkg_thr=0.5, cls_source='gt')


@MODELS.register_module()
class ToCoSegmentor(BaseSegmentor):
    """The single-stage ViT of ToCo with patch token contrast (PTC).

    ToCo (CVPR 2023) without its class-token contrast: the substrate DuPL
    and FSR build on, and DuPL's Table 4 baseline.

    .. code:: text

        image -> WSSSViT -> final tokens ─ GMP classifier ─ loss_cls
                         │                └ LargeFOV head ─ loss_seg (vs PAR-
                         │                  refined final-CAM labels)
                         ├ aux tokens ─── GMP aux classifier ─ loss_cls_aux
                         └ final tokens ─ PTC (vs aux-CAM token labels)

    Training-time CAMs are computed without gradient at ``cam_scales`` with
    flip (max of a view and its un-flipped flip, summed over scales,
    min-max normalised), in the model's current (train) mode, as the code.
    The segmentation (and the optional energy) loss switch on at
    ``train_cfg.seg_start_iter``, PTC at ``ptc_start_iter`` (VOC: 0), and
    until ``aux_label_end_iter`` the segmentation pseudo labels come from the
    auxiliary CAM instead of the final one (ToCo's COCO stages: classifiers
    only to 8k, segmentation from aux-CAM labels to 12k, then PTC and
    final-CAM labels). Gates read the iteration from mmengine's MessageHub,
    so they survive ``--resume``.

    Args:
        backbone (dict): :class:`WSSSViT` config.
        cls_head (dict): Classifier on the final tokens (``in_index=0``).
        aux_cls_head (dict): Classifier on the auxiliary tokens
            (``in_index=1``).
        decode_head (dict): :class:`LargeFOVHead` config.
        loss_ptc (dict): :class:`PTCLoss` config (its weight: 0.2).
        loss_seg (dict): :class:`BgFgSegLoss` config (its weight: 0.1).
        loss_energy (dict, optional): :class:`DenseEnergyLoss` config
            (weight 0.05); None switches it off.
        train_cfg (dict): ``cam_scales``, ``high_thr``, ``low_thr``,
            ``seg_start_iter``, ``ptc_start_iter``, ``aux_label_end_iter``,
            ``par`` (see ``DEFAULT_TRAIN_CFG``).
        test_cfg (dict): ``output`` 'seg' (the segmentation head, fused
            with ``fuse_max_over_scales`` over ``scales`` and flip) or 'cam'
            (thresholded final CAMs at ``bkg_thr`` with ``cls_source`` 'gt'
            or 'pred', as :class:`CAMSegmentor`); ``crf`` for
            ``tools/test.py --crf``.
        data_preprocessor (dict): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 cls_head: ConfigType,
                 aux_cls_head: ConfigType,
                 decode_head: ConfigType,
                 loss_ptc: ConfigType = dict(type='PTCLoss', loss_weight=0.2),
                 loss_seg: ConfigType = dict(
                     type='BgFgSegLoss', loss_weight=0.1),
                 loss_energy: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.cls_head = MODELS.build(cls_head)
        self.aux_cls_head = MODELS.build(aux_cls_head)
        self.decode_head = MODELS.build(decode_head)
        self.loss_ptc = MODELS.build(loss_ptc)
        self.loss_seg = MODELS.build(loss_seg)
        self.loss_energy = MODELS.build(loss_energy) if loss_energy else None
        self.num_classes = self.decode_head.num_classes
        self.align_corners = self.decode_head.align_corners
        self.train_cfg = ConfigDict({**DEFAULT_TRAIN_CFG, **(train_cfg or {})})
        self.test_cfg = ConfigDict({**DEFAULT_TEST_CFG, **(test_cfg or {})})
        self.par = PAR(**self.train_cfg.par)

    # ------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(final map, aux map, class token) of the backbone."""
        return self.backbone(inputs)

    def _both_cams(self, inputs: Tensor) -> Tensor:
        """Raw final and aux CAMs stacked on the channel axis (N, 2C, h, w)."""
        feats = self.extract_feat(inputs)
        return torch.cat([self.cls_head.cam(feats),
                          self.aux_cls_head.cam(feats)], dim=1)

    @torch.no_grad()
    def training_cams(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """Multi-scale + flip normalised (final, aux) CAMs (B, C, H, W)."""
        cams = multi_scale_cam(
            self._both_cams, inputs, scales=self.train_cfg.cam_scales,
            flip=True, align_corners=self.align_corners)
        return cams.chunk(2, dim=1)

    def _images_01(self, inputs: Tensor) -> Tensor:
        """Normalised inputs back to RGB in [0, 1] (for PAR)."""
        return denormalize_images(inputs, self.data_preprocessor)

    # Steps of the loss, also used by DuPL's students -------------------
    def cls_losses(self, feats: Tuple[Tensor, Tensor, Tensor],
                   data_samples: SampleList) -> Dict[str, Tensor]:
        """Multi-label soft-margin losses of both classifiers."""
        losses = dict()
        for head in (self.cls_head, self.aux_cls_head):
            name = head.loss_cls.loss_name
            losses[name] = head.loss_by_feat(head(feats), data_samples)[name]
        return losses

    def ptc(self, final_map: Tensor, aux_cam: Tensor, cls_label: Tensor,
            img_box: List, high_thr: Union[float, Tensor]) -> Tensor:
        """PTC on the final tokens against aux-CAM token labels."""
        ptc_label = ptc_label_from_cam(
            aux_cam, cls_label, final_map.shape[-2:],
            low_thr=self.train_cfg.low_thr, high_thr=high_thr,
            img_box=img_box)
        return self.loss_ptc(final_map, ptc_label)

    def pseudo_label(self, images_01: Tensor, cam: Tensor, cls_label: Tensor,
                     img_box: List, high_thr: Union[float, Tensor]) -> Tensor:
        """PAR-refined segmentation pseudo label (B, H, W) of a CAM."""
        return refine_cams_with_bkg(
            self.par, images_01, cam, cls_label, high_thr=high_thr,
            low_thr=self.train_cfg.low_thr, img_box=img_box)

    def label_threshold(self, cls_label: Tensor) -> Union[float, Tensor]:
        """High background constant of the PTC and segmentation labels."""
        return self.train_cfg.high_thr

    def label_cam(self, cam: Tensor, aux_cam: Tensor) -> Tensor:
        """CAM the segmentation labels come from at this iteration (ToCo's
        COCO stage 2 uses the aux CAM until ``aux_label_end_iter``)."""
        return cam if is_active(self.train_cfg.aux_label_end_iter) \
            else aux_cam

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        cfg = self.train_cfg
        cls_label = stack_cls_labels(data_samples).to(inputs)
        img_box = [s.metainfo.get('img_box') for s in data_samples]
        feats = self.extract_feat(inputs)
        losses = self.cls_losses(feats, data_samples)

        cam, aux_cam = self.training_cams(inputs)
        final_map = feats[0]
        if is_active(cfg.ptc_start_iter):
            losses[self.loss_ptc.loss_name] = self.ptc(
                final_map, aux_cam, cls_label, img_box,
                self.label_threshold(cls_label))
        else:
            losses[self.loss_ptc.loss_name] = final_map.sum() * 0.

        seg_logits = self.decode_head(feats)
        if is_active(cfg.seg_start_iter):
            label = self.pseudo_label(
                self._images_01(inputs), self.label_cam(cam, aux_cam),
                cls_label, img_box, self.label_threshold(cls_label))
            losses[self.loss_seg.loss_name] = self.loss_seg(seg_logits, label)
            if self.loss_energy is not None:
                losses[self.loss_energy.loss_name] = self._energy(
                    inputs, seg_logits, label, img_box)
        else:
            # Keep the head in the graph (DDP) without training it yet.
            losses[self.loss_seg.loss_name] = seg_logits.sum() * 0.
        return losses

    def _energy(self, inputs: Tensor, seg_logits: Tensor, label: Tensor,
                img_box: List) -> Tensor:
        H, W = inputs.shape[-2:]
        probs = torch.nn.functional.interpolate(
            seg_logits, size=(H, W), mode='bilinear',
            align_corners=self.align_corners).softmax(dim=1)
        roi = mask_outside_box(
            torch.ones_like(label), img_box, ignore_index=0).to(inputs)
        img_255 = self._images_01(inputs) * 255.
        return self.loss_energy(img_255, probs, roi, label)

    # ------------------------------------------------------------------
    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Segmentation logits at the token resolution."""
        return self.decode_head(self.extract_feat(inputs))

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        return self.inference(inputs)

    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        cfg = self.test_cfg
        if cfg.output == 'seg':
            return fuse_max_over_scales(
                self._forward, inputs, scales=cfg.scales, flip=cfg.flip,
                align_corners=self.align_corners)
        if cfg.output != 'cam':
            raise ValueError("test_cfg.output must be 'seg' or 'cam', got "
                             f'{cfg.output!r}')
        feats_fn = lambda x: self.cls_head.cam(self.extract_feat(x))  # noqa
        cams = multi_scale_cam(
            feats_fn, inputs, scales=cfg.scales, flip=cfg.flip,
            align_corners=self.align_corners)
        present = present_classes(
            cfg.cls_source,
            data_samples,
            cls_logits_fn=lambda: self.cls_head(self.extract_feat(inputs)),
            cls_thr=cfg.get('cls_thr', 0.5)).to(inputs)
        return cam_score_map(cams, present, cfg.bkg_thr)

    @torch.no_grad()
    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        return self.postprocess_result(
            self.inference(inputs, data_samples), data_samples)
