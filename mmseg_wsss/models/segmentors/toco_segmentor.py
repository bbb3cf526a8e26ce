# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..networks import ToCoNetwork
from ..postprocess import fuse_max_over_scales
from ..wsss import (PAR, EMATeacher, cam_score_map, cam_to_label,
                    cam_to_roi_mask, crop_from_roi, multi_scale_cam,
                    present_classes, ptc_label_from_cam, refine_cams_with_bkg)
from .wsss_segmentor import WSSSSegmentor

TEST_OUTPUTS = ('seg', 'cam')


@MODELS.register_module()
class ToCoSegmentor(WSSSSegmentor):
    """ToCo (CVPR 2023): patch token contrast (PTC) and, with ``loss_ctc``,
    class-token contrast (CTC); without CTC it is the substrate DuPL builds
    on and DuPL's Table 4 baseline.

    .. code:: text

        image -> ToCoNetwork -> final tokens ─ classifier ─ loss_cls
                             │               └ LargeFOV ─ loss_seg (+ energy)
                             │                 vs PAR-refined CAM labels
                             ├ aux tokens ─── aux classifier ─ loss_cls_aux
                             ├ final tokens ─ PTC vs aux-CAM token labels
                             └ class tokens of 2 global views + 8 local
                               crops ─ proj_head ─ CTC vs EMA proj_head

    Per iteration: both classification losses; the no-grad multi-scale +
    flip CAMs of both classifiers (:meth:`training_cams`); PTC on the final
    tokens against aux-CAM token labels (:meth:`ptc_loss`); from the
    segmentation gate on, the PAR-refined CAM pseudo label
    (:meth:`refine_label`) supervises the LargeFOV head. ToCo's COCO stages
    take the labels from the aux CAM until ``aux_label_end_iter``. With
    ``loss_ctc``, :meth:`ctc_loss` contrasts the class tokens of the image,
    of a second global view and of local crops cut around uncertain regions
    of the aux CAM, through the network's ``proj_head`` and its EMA teacher.

    :meth:`visual_maps`: both training CAMs, the thresholded label CAM
    before PAR and the pseudo label after it.

    Subclasses that compose several networks (DuPL) override
    :meth:`build_networks`, :attr:`networks` and
    :meth:`inference_network`, and reuse the steps with other arguments.

    Args:
        network (dict): :class:`ToCoNetwork` config.
        loss_ptc (dict): :class:`PTCLoss` config (weight 0.2).
        loss_seg (dict): :class:`BgFgSegLoss` config (weight 0.1).
        loss_energy (dict, optional): :class:`DenseEnergyLoss` config
            (weight 0.05); None switches it off.
        loss_ctc (dict, optional): :class:`ClassTokenContrastLoss` config
            (weight 0.5, temperature 0.5 VOC / 1.0 COCO); needs the
            network's ``proj_head`` and two extra views per image from the
            pipeline (``AddView``: the second global view, then the copy the
            local crops are cut from). None (default): ToCo without CTC.
        train_cfg (dict): ``ctc`` (``start_iter``, EMA ``momentum`` 0.9,
            ``num_local_crops`` 8, ``local_crop_size`` 96, ``neg_ratio``
            0.2), ``cam_scales``, ``high_thr``, ``low_thr`` (the
            label thresholds), ``par`` (:class:`PAR` arguments), the gates
            ``seg_start_iter`` (segmentation and energy), ``ptc_start_iter``
            and ``aux_label_end_iter`` (None: no gate / no aux-label stage),
            compared by ``gate_rule`` (see ``DEFAULT_TRAIN_CFG``).
        test_cfg (dict): ``output`` 'seg' (the LargeFOV head, fused by
            :func:`fuse_max_over_scales` over ``scales`` and ``flip``) or
            'cam' (thresholded final CAMs at ``bkg_thr`` with ``cls_source``
            'gt' or 'pred' and ``cls_thr``); ``crf`` (dense CRF).
        data_preprocessor (dict): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    DEFAULT_TRAIN_CFG = dict(
        cam_scales=(1.0, 0.5, 1.5),
        # The scale-1.0 CAM from the training forward (#19 item 4).
        reuse_forward_cam=False,
        high_thr=0.7,
        low_thr=0.25,
        # The code's gates: `if n_iter <= 2000:` no seg/energy loss, so they
        # are first on at 0-based iteration 2001 (gate_rule 'after'); PTC is
        # ungated on VOC, and there is no aux-CAM label stage.
        seg_start_iter=2000,
        ptc_start_iter=None,
        aux_label_end_iter=None,
        gate_rule='after',
        par=dict(dilations=(1, 2, 4, 8, 12, 24), num_iter=10, w1=0.3, w2=0.01),
        # Class-token contrast (read only with loss_ctc; notes 1.6): on from
        # iteration 0 on VOC (COCO: with PTC, after 12k), the teacher head an
        # EMA of the student head with a constant m 0.9, 8 local 96 px crops,
        # a crop negative at an ROI fraction <= 0.2.
        ctc=dict(
            start_iter=None,
            momentum=0.9,
            num_local_crops=8,
            local_crop_size=96,
            neg_ratio=0.2))
    DEFAULT_TEST_CFG = dict(
        WSSSSegmentor.DEFAULT_TEST_CFG,
        output='seg',
        scales=(1.0, 1.25, 1.5),
        flip=True,
        bkg_thr=0.5,
        cls_source='gt',
        cls_thr=0.5)
    VISUAL_MAP_TITLES = dict(
        cam='CAM',
        aux_cam='aux CAM',
        label_raw='label before PAR',
        label_refined='label after PAR')
    # e6331ef held the network's modules at the top level.
    LEGACY_KEY_PREFIXES = {
        f'{name}.': f'network.{name}.'
        for name in ('backbone', 'cls_head', 'aux_cls_head', 'decode_head')
    }

    def __init__(self,
                 network: ConfigType,
                 loss_ptc: ConfigType = dict(type='PTCLoss', loss_weight=0.2),
                 loss_seg: ConfigType = dict(
                     type='BgFgSegLoss', loss_weight=0.1),
                 loss_energy: OptConfigType = None,
                 loss_ctc: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if self.test_cfg.output not in TEST_OUTPUTS:
            raise ValueError(f'test_cfg.output must be one of {TEST_OUTPUTS}'
                             f', got {self.test_cfg.output!r}')
        self.build_networks(network)
        self.loss_ptc = MODELS.build(loss_ptc)
        self.loss_seg = MODELS.build(loss_seg)
        self.loss_energy = MODELS.build(loss_energy) if loss_energy else None
        first = self.networks[0]
        self.num_classes = first.num_classes
        self.align_corners = first.align_corners
        self.par = PAR(**self.train_cfg.par)
        self.loss_ctc = None
        if loss_ctc:
            self.build_ctc(loss_ctc)

    # Networks ----------------------------------------------------------
    def build_networks(self, network: ConfigType) -> None:
        """Build the network(s) the method trains."""
        self.network = MODELS.build(network)

    def build_ctc(self, loss_ctc: ConfigType) -> None:
        """The CTC loss and the EMA teacher of the network's projector.

        ToCo's teacher head is a copy of the student head updated before
        each forward with ``t = m * t + (1 - m) * s`` (m 0.9), the encoder
        shared. The teacher is synchronised with the student head at its
        first update (the code copies it at construction; both give the
        student head at the first CTC iteration).
        """
        if self.network.proj_head is None:
            raise ValueError('loss_ctc needs a projector: add '
                             'network.proj_head (a DINOHead config, ToCo: '
                             'out_dim 1024)')
        self.loss_ctc = MODELS.build(loss_ctc)
        self.ctc_teacher = EMATeacher(
            self.network.proj_head,
            momentum=self.train_cfg.ctc.momentum,
            schedule='constant')

    @property
    def networks(self) -> List[ToCoNetwork]:
        """The trained networks, in order."""
        return [self.network]

    def inference_network(self) -> ToCoNetwork:
        """The network that predicts at test time."""
        return self.network

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Backbone features of the inference network."""
        return self.inference_network().extract_feat(inputs)

    # Steps of the loss, shared with the methods built on ToCo -----------
    def training_cams(
        self,
        network: ToCoNetwork,
        inputs: Tensor,
        feats: Optional[Tuple[Tensor, Tensor, Tensor]] = None
    ) -> Tuple[Tensor, Tensor]:
        """Normalised (final, aux) CAMs at ``train_cfg.cam_scales``.

        With ``train_cfg.reuse_forward_cam`` and a deterministic backbone
        (no drop path, no dropout), ``feats`` (the training forward's
        features of ``inputs``) give the unflipped scale-1.0 CAMs: one
        backbone pass of B images fewer per step, the same CAMs up to float
        rounding. Off by default until its saving is measured where it
        matters (on the toy configs it is bit-exact on the CPU: the runs
        with it on and off logged identical losses; docs/performance.md).
        """
        if (feats is None or not self.train_cfg.get('reuse_forward_cam')
                or self.stochastic_backbone(network)):
            feats = None
        return network.training_cams(
            inputs, self.train_cfg.cam_scales, feats=feats)

    def label_threshold(self, cls_label: Tensor) -> Union[float, Tensor]:
        """High background constant of the PTC and segmentation labels."""
        return self.train_cfg.high_thr

    def label_cam(self, cam: Tensor, aux_cam: Tensor) -> Tensor:
        """The CAM the segmentation labels come from at this iteration
        (ToCo's COCO stage 2: the aux CAM until ``aux_label_end_iter``)."""
        return cam if self.gate_open(self.train_cfg.aux_label_end_iter) \
            else aux_cam

    def ptc_loss(self, final_map: Tensor, aux_cam: Tensor, cls_label: Tensor,
                 img_box: List, high_thr: Union[float, Tensor]) -> Tensor:
        """PTC on the final tokens against aux-CAM token labels."""
        ptc_label = ptc_label_from_cam(
            aux_cam,
            cls_label,
            final_map.shape[-2:],
            low_thr=self.train_cfg.low_thr,
            high_thr=high_thr,
            img_box=img_box)
        return self.loss_ptc(final_map, ptc_label)

    def refine_label(self, images_01: Tensor, cam: Tensor, aux_cam: Tensor,
                     cls_label: Tensor, img_box: List,
                     high_thr: Union[float, Tensor]) -> Tensor:
        """PAR-refined (B, H, W) segmentation pseudo label of this
        iteration's label CAM (:meth:`label_cam`)."""
        return refine_cams_with_bkg(
            self.par,
            images_01,
            self.label_cam(cam, aux_cam),
            cls_label,
            high_thr=high_thr,
            low_thr=self.train_cfg.low_thr,
            img_box=img_box)

    def ctc_loss(self, inputs: Tensor, data_samples: SampleList,
                 cls_token: Tensor, aux_cam: Tensor,
                 cls_label: Tensor) -> Tensor:
        """ToCo's class-token contrast (notes 1.6).

        Global views: the training image (its class token ``cls_token``
        from the training forward) and the pipeline's second global view;
        8 local crops are cut from the pipeline's third view (a jittered
        copy of the training crop) around pixels whose aux-CAM ROI is not
        confident foreground. The teacher's global tokens are the student's,
        detached: the code runs the shared encoder a second time on the
        global views, which gives the same values as long as the backbone
        has no drop path or dropout (ToCo's); otherwise a separate no-grad
        pass is run.

        Args:
            inputs (Tensor): (B, 3, H, W) training images.
            data_samples (list[SegDataSample]): With 2 packed views each.
            cls_token (Tensor): (B, D) class tokens of ``inputs``.
            aux_cam (Tensor): (B, C-1, H, W) normalised aux CAMs.
            cls_label (Tensor): (B, C-1) image labels.

        Returns:
            Tensor: The weighted CTC loss.
        """
        cfg = self.train_cfg
        network = self.network
        global_view, local_source = self.extra_views(
            data_samples, inputs, 2, 'ToCo\'s class-token contrast')
        roi = cam_to_roi_mask(aux_cam, cls_label, cfg.low_thr, cfg.high_thr)
        local, positive = crop_from_roi(
            local_source,
            roi,
            num_crops=cfg.ctc.num_local_crops,
            crop_size=cfg.ctc.local_crop_size,
            neg_ratio=cfg.ctc.neg_ratio)
        B, V = positive.shape
        self.ctc_teacher.update(network.proj_head)
        global_cls = torch.cat(
            [cls_token, network.extract_feat(global_view)[2]])  # (2B, D)
        local_cls = network.extract_feat(local.flatten(0, 1))[2]  # (B*V, D)
        if self.stochastic_backbone(network):
            with torch.no_grad():
                teacher_cls = torch.cat([
                    network.extract_feat(x)[2] for x in (inputs, global_view)
                ])
        else:
            teacher_cls = global_cls.detach()
        # Views are view-major in the code: (2B, K) -> (B, 2, K).
        teacher = self.ctc_teacher(teacher_cls).view(2, B, -1).transpose(0, 1)
        student_global = network.project_cls(global_cls).view(2, B, -1)
        student = torch.cat([
            student_global.transpose(0, 1),
            network.project_cls(local_cls).view(B, V, -1)
        ],
                            dim=1)
        positive = torch.cat([positive.new_ones(B, 2), positive], dim=1)
        return self.loss_ctc(student, teacher, positive)

    @staticmethod
    def stochastic_backbone(network: ToCoNetwork) -> bool:
        """Whether the backbone's training forward is random (drop path or
        dropout), so a repeated pass does not give the same tokens."""
        if not network.training:
            return False
        return any(m.p > 0 if isinstance(m, torch.nn.Dropout
                                         ) else getattr(m, 'drop_prob', 0.) > 0
                   for m in network.backbone.modules())

    # Training ----------------------------------------------------------
    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        cfg = self.train_cfg
        cls_label = self.cls_labels(data_samples, inputs)
        img_box = self.img_boxes(data_samples)
        feats = self.network.extract_feat(inputs)
        losses = self.network.cls_losses(feats, data_samples)
        cam, aux_cam = self.training_cams(self.network, inputs, feats)
        high_thr = self.label_threshold(cls_label)

        def ptc() -> Tensor:
            return self.ptc_loss(feats[0], aux_cam, cls_label, img_box,
                                 high_thr)

        losses[self.loss_ptc.loss_name] = self.gated(cfg.ptc_start_iter, ptc,
                                                     feats[0])
        if self.loss_ctc is not None:

            def ctc() -> Tensor:
                return self.ctc_loss(inputs, data_samples, feats[2], aux_cam,
                                     cls_label)

            losses[self.loss_ctc.loss_name] = self.gated(
                cfg.ctc.start_iter, ctc,
                [feats[2]] + list(self.network.proj_head.parameters()))

        seg_logits = self.network.decode_head(feats)
        if not self.gate_open(cfg.seg_start_iter):
            losses[self.loss_seg.loss_name] = seg_logits.sum() * 0.
            return losses
        label = self.refine_label(
            self.images_01(inputs), cam, aux_cam, cls_label, img_box, high_thr)
        losses[self.loss_seg.loss_name] = self.loss_seg(seg_logits, label)
        if self.loss_energy is not None:
            losses[self.loss_energy.loss_name] = self.energy_loss(
                inputs, seg_logits, label, img_box)
        return losses

    def _pseudo_labels(self, inputs: Tensor,
                       data_samples: SampleList) -> Tensor:
        if not self.gate_open(self.train_cfg.seg_start_iter):
            return self.ignore_labels(inputs)
        cls_label = self.cls_labels(data_samples, inputs)
        cam, aux_cam = self.training_cams(self.network, inputs)
        return self.refine_label(
            self.images_01(inputs), cam, aux_cam, cls_label,
            self.img_boxes(data_samples), self.label_threshold(cls_label))

    # Pictures ----------------------------------------------------------
    def _visual_maps(self, inputs: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        return self.network_visual_maps(self.network, inputs, data_samples)

    def network_visual_maps(self, network: ToCoNetwork, inputs: Tensor,
                            data_samples: SampleList) -> Dict[str, Tensor]:
        """One network's :meth:`visual_maps`: its training CAMs ('cam',
        'aux_cam'), the label CAM (:meth:`label_cam`) thresholded with the
        ignore band ('label_raw') and the PAR-refined pseudo label
        (:meth:`refine_label`, 'label_refined'), with the thresholds of the
        current iteration."""
        cls_label = self.cls_labels(data_samples, inputs)
        img_box = self.img_boxes(data_samples)
        cam, aux_cam = self.training_cams(network, inputs)
        high_thr = self.label_threshold(cls_label)
        label_raw = cam_to_label(
            self.label_cam(cam, aux_cam),
            cls_label,
            low_thr=self.train_cfg.low_thr,
            high_thr=high_thr,
            img_box=img_box)
        label_refined = self.refine_label(
            self.images_01(inputs), cam, aux_cam, cls_label, img_box, high_thr)
        return dict(
            cam=cam,
            aux_cam=aux_cam,
            label_raw=label_raw,
            label_refined=label_refined)

    # Inference ---------------------------------------------------------
    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Segmentation logits of the inference network (token grid)."""
        return self.inference_network().seg_logits(inputs)

    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        return self.network_inference(self.inference_network(), inputs,
                                      data_samples)

    def network_inference(self,
                          network: ToCoNetwork,
                          inputs: Tensor,
                          data_samples: OptSampleList = None) -> Tensor:
        """(B, C, H, W) fused scores of one network per ``test_cfg``."""
        cfg = self.test_cfg
        if cfg.output == 'seg':
            return fuse_max_over_scales(
                network.seg_logits,
                inputs,
                scales=cfg.scales,
                flip=cfg.flip,
                align_corners=network.align_corners)
        cams = multi_scale_cam(
            network.cam,
            inputs,
            scales=cfg.scales,
            flip=cfg.flip,
            align_corners=network.align_corners)
        present = present_classes(
            cfg.cls_source,
            data_samples,
            cls_logits_fn=lambda: network.cls_logits(inputs),
            cls_thr=cfg.cls_thr).to(inputs)
        return cam_score_map(cams, present, cfg.bkg_thr)
