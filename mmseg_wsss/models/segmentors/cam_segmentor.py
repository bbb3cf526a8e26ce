# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..postprocess import CRFPostProcessor
from ..wsss import (cam_score_map, cam_to_label, mask_outside_box,
                    multi_scale_cam, present_classes)
from .wsss_segmentor import WSSSSegmentor


@MODELS.register_module()
class CAMSegmentor(WSSSSegmentor):
    """CAM baseline: a backbone and a CAM classifier, nothing else.

    Trained with image-level labels only (multi-label soft-margin loss); its
    segmentation is the thresholded CAM, so a classification-only model is a
    complete, evaluable WSSS method and the baseline later methods are
    compared with.

    .. code:: text

        train:   inputs -> backbone -> CAMClsHead -> logits -> loss_cls
        predict: inputs -(scales, flip)-> raw CAMs -> ReLU, merge, min-max
                 -> [bkg_thr, CAMs of present classes] -> argmax

    ``test_cfg`` keys (defaults in ``DEFAULT_TEST_CFG``):

    - ``scales``, ``flip``, ``flip_merge``, ``scale_merge``: CAM aggregation
      (:func:`multi_scale_cam`).
    - ``bkg_thr``: a pixel is background where the strongest present CAM is
      ``<= bkg_thr`` (ToCo evaluates with 0.5 on VOC, 0.45 on COCO).
    - ``cls_source``: which classes are present. 'pred' (default, a fair
      evaluation): the classifier's sigmoid scores above ``cls_thr`` at
      scale 1, and always the top-scoring class (every image of these
      datasets has one). 'gt': the image-level ground truth, as the papers
      score CAM pseudo labels on the training split.

    ``seg_logits`` of the results hold the (C+1)-channel score stack
    (background score, then the CAMs of the present classes).

    :meth:`visual_maps`: 'cam', 'label_raw' (the pseudo label) and
    'label_refined' (its dense CRF, with ``test_cfg.crf``).

    Its :meth:`pseudo_labels` are the thresholded CAMs (``test_cfg``
    scales and ``bkg_thr``) of the image-level ground-truth classes.

    Args:
        backbone (dict): Backbone config.
        cls_head (dict): :class:`CAMClsHead` config.
        neck (dict, optional): Neck config.
        train_cfg (dict, optional): No settings (the CAM baseline has no
            gates or thresholds in training); kept for the mmseg interface.
        test_cfg (dict, optional): See above.
        data_preprocessor (dict, optional): Data preprocessor config.
        pretrained (str, optional): Backbone checkpoint (sets
            ``backbone.init_cfg``).
        init_cfg (dict, optional): Initialisation config.
    """
    DEFAULT_TEST_CFG = dict(
        WSSSSegmentor.DEFAULT_TEST_CFG,
        scales=(1.0, ),
        flip=True,
        flip_merge='max',
        scale_merge='sum',
        bkg_thr=0.5,
        cls_source='pred',
        cls_thr=0.5)
    VISUAL_MAP_TITLES = dict(
        cam='CAM', label_raw='CAM label', label_refined='after CRF')

    def __init__(self,
                 backbone: ConfigType,
                 cls_head: ConfigType,
                 neck: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if pretrained is not None:
            backbone = dict(backbone)
            backbone['init_cfg'] = dict(
                type='Pretrained', checkpoint=pretrained)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.cls_head = MODELS.build(cls_head)
        self.num_classes = self.cls_head.num_classes
        self.align_corners = False

    # ------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone (and neck) features."""
        x = self.backbone(inputs)
        if self.with_neck:
            x = self.neck(x)
        return tuple(x) if isinstance(x, (list, tuple)) else (x, )

    def raw_cam(self, inputs: Tensor) -> Tensor:
        """(N, 3, H, W) images to (N, C, h, w) raw CAMs."""
        return self.cls_head.cam(self.extract_feat(inputs))

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """Classification loss from image-level labels only."""
        return self.cls_head.loss(self.extract_feat(inputs), data_samples)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Classification logits (B, C)."""
        return self.cls_head(self.extract_feat(inputs))

    # ------------------------------------------------------------------
    def present_classes(self,
                        inputs: Tensor,
                        data_samples: OptSampleList = None) -> Tensor:
        """(B, C) multi-hot of the classes whose CAMs enter the prediction."""
        return present_classes(
            self.test_cfg.cls_source,
            data_samples,
            cls_logits_fn=lambda: self._forward(inputs),
            cls_thr=self.test_cfg.cls_thr).to(inputs)

    def cams(self, inputs: Tensor) -> Tensor:
        """Normalised multi-scale + flip CAMs (B, C, H, W) per ``test_cfg``."""
        cfg = self.test_cfg
        return multi_scale_cam(
            self.raw_cam,
            inputs,
            scales=cfg.scales,
            flip=cfg.flip,
            flip_merge=cfg.flip_merge,
            scale_merge=cfg.scale_merge,
            align_corners=self.align_corners)

    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        """(B, C+1, H, W) score stack: background, then present CAMs."""
        present = self.present_classes(inputs, data_samples)
        return cam_score_map(self.cams(inputs), present, self.test_cfg.bkg_thr)

    def _pseudo_labels(self, inputs: Tensor,
                       data_samples: SampleList) -> Tensor:
        """Thresholded CAMs of the ground-truth classes (padding ignored)."""
        return self.cam_label(self.cams(inputs), data_samples)

    def cam_label(self, cams: Tensor, data_samples: SampleList) -> Tensor:
        """(B, H, W) label of normalised (B, C, H, W) CAMs: those of the
        ground-truth classes thresholded at ``bkg_thr``, padding ignored."""
        return cam_to_label(
            cams,
            self.cls_labels(data_samples, cams),
            bkg_thr=self.test_cfg.bkg_thr,
            img_box=self.img_boxes(data_samples))

    # Pictures ----------------------------------------------------------
    def _visual_maps(self, inputs: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        """'cam', 'label_raw' (the pseudo label) and, when ``test_cfg.crf``
        is set (enabled or not) and pydensecrf is installed,
        'label_refined': the dense CRF of the ground-truth classes' score
        stack."""
        cams = self.cams(inputs)
        maps = dict(cam=cams, label_raw=self.cam_label(cams, data_samples))
        if self.test_cfg.get('crf') is None:
            return maps
        # Inline (no worker pool) and whether or not the CRF is enabled.
        crf = CRFPostProcessor.build(
            dict(self.test_cfg.crf, enable=True, workers=0))
        scores = cam_score_map(cams, self.cls_labels(data_samples, cams),
                               self.test_cfg.bkg_thr)
        images = (self.images_01(inputs) * 255.).round().clamp(0, 255)
        images = images.byte().permute(0, 2, 3, 1).cpu().numpy()
        try:
            labels = crf.refine(
                list(images), [crf.to_probs(score) for score in scores])
        except ImportError:  # pydensecrf (the crf extra) is not installed
            return maps
        label = torch.from_numpy(np.stack(labels)).to(inputs.device)
        maps['label_refined'] = mask_outside_box(label,
                                                 self.img_boxes(data_samples))
        return maps
