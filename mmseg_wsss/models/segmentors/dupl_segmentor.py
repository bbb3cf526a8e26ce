# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import ModuleList
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..networks import ToCoNetwork
from ..wsss import (IGNORE_INDEX, StrongView, cosine_threshold, current_iter,
                    filter_noisy_labels, is_active, per_image_threshold)
from .toco_segmentor import ToCoSegmentor

BRANCHES = ('mean', 'best', 1, 2)
CONSISTENCY_TARGETS = ('code', 'paper')


@MODELS.register_module()
class DuPLSegmentor(ToCoSegmentor):
    """DuPL: dual student with trustworthy progressive learning (CVPR 2024).

    Two independently parameterised ToCo networks (ViT, classifier, aux
    classifier, LargeFOV head) built from one config, hence from the same
    pretrained weights, trained with ToCo's steps (PTC, PAR-refined labels)
    and DuPL's additions. Per iteration (losses in the code's order):

    1. each network's two classification losses and PTC; the PTC token
       labels use the dynamic threshold;
    2. the discrepancy loss between the two final token maps (Eq. 2-3);
    3. from ``seg_start_iter``: each network's PAR-refined CAM pseudo
       label, with the per-image dynamic threshold (Eq. 5), supervises the
       *other* network's segmentation head (Eq. 4);
    4. from ``filter_start_iter``: each label is first cleaned by adaptive
       noise filtering on its own network's per-pixel loss (Eq. 6-7), and
       each network's strong-view prediction is made consistent with its own
       confident weak-view prediction on the pixels its supervising label
       leaves unlabelled (Eq. 8, code form).

    Inference follows ``test_cfg.branch``: 'mean' (default: both networks,
    their class probabilities averaged), 1 or 2 (one network), or 'best' (the
    one that validated better on the val pixel labels, kept in the
    ``best_branch`` buffer by :class:`BestBranchHook`; an opt-in that uses
    labels WSSS must not use). In validation mode
    (``validate_all_branches``) each network also predicts on its own and
    :class:`MultiBranchIoUMetric` scores both.

    :meth:`visual_maps` (``branch=1`` or 2): ToCo's maps of one student
    and, once filtering is on, its noise-filtered label.

    Args:
        network (dict): :class:`ToCoNetwork` config, built twice (e.g. a
            ToCo config's ``model.network``).
        loss_ptc (dict): :class:`PTCLoss` config (weight 0.2).
        loss_seg (dict): Segmentation loss of each network (DuPL: 0.2).
        loss_dis (dict): :class:`DiscrepancyLoss` config.
        loss_consistency (dict): :class:`ConsistencyLoss` config.
        train_cfg (dict): ToCo's ``cam_scales``, ``low_thr``, ``par``,
            gates (``ptc_start_iter``, ``seg_start_iter``,
            ``aux_label_end_iter``: COCO's aux-CAM labels with the fixed
            start threshold until then) and ``gate_rule``; DuPL's
            ``dis_start_iter``, ``filter_start_iter`` (compared 'from' as
            the code), ``consistency_start_iter`` (its loss is computed
            whenever filtering is on and weighted 0 until this gate opens,
            as the code), ``dynamic_thr``
            (:func:`cosine_threshold` arguments and ``enable``; its
            ``start`` is the high threshold while disabled),
            ``noise_filter`` (:func:`filter_noisy_labels` arguments),
            ``strong_view`` (:class:`StrongView` arguments) and
            ``consistency_target`` ('code' or 'paper'). There is no
            ``high_thr``: the dynamic threshold replaces it.
        test_cfg (dict): ToCo's test settings plus ``branch``.
        data_preprocessor (dict): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    # DuPL's VOC schedule (train_final_voc.py): classifiers, PTC and the
    # discrepancy loss from 0; cross segmentation when n_iter > cam_iters =
    # 2,000 (gate_rule 'after'); noise filtering when n_iter >= gmm_iters =
    # 8,000 (the code's branch `if n_iter < gmm_iters`: always compared
    # 'from') and the consistency loss when n_iter > 8,000 (its weight is 0
    # while n_iter <= gmm_iters; COCO's is on from 32,000 itself).
    DEFAULT_TRAIN_CFG = dict(
        cam_scales=(1.0, 0.5, 1.5),
        reuse_forward_cam=False,
        low_thr=0.25,
        par=ToCoSegmentor.DEFAULT_TRAIN_CFG['par'],
        dis_start_iter=None,
        ptc_start_iter=None,
        seg_start_iter=2000,
        aux_label_end_iter=None,
        filter_start_iter=8000,
        consistency_start_iter=8000,
        gate_rule='after',
        dynamic_thr=dict(
            enable=True,
            start=0.7,
            target=0.55,
            max_iters=20000,
            warmup_iters=2000,
            origin='code'),
        noise_filter=dict(
            backend='sklearn',
            ce_thr=0.1,
            min_pixels=1000,
            mean_gap=1.0,
            gamma=0.95),
        strong_view=dict(num_ops=5, magnitude=10, scale=0.75),
        consistency_target='code')
    # 'mean': no student is chosen on the val labels (configs/dupl/README.md).
    DEFAULT_TEST_CFG = dict(ToCoSegmentor.DEFAULT_TEST_CFG, branch='mean')
    VISUAL_MAP_TITLES = dict(
        ToCoSegmentor.VISUAL_MAP_TITLES, label_filtered='after filtering')
    LEGACY_KEY_PREFIXES = dict()  # e6331ef already named them students.*

    def __init__(self,
                 network: ConfigType,
                 loss_ptc: ConfigType = dict(type='PTCLoss', loss_weight=0.2),
                 loss_seg: ConfigType = dict(
                     type='BgFgSegLoss', loss_weight=0.2),
                 loss_dis: ConfigType = dict(
                     type='DiscrepancyLoss', loss_weight=0.1),
                 loss_consistency: ConfigType = dict(
                     type='ConsistencyLoss', loss_weight=0.05),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            network=network,
            loss_ptc=loss_ptc,
            loss_seg=loss_seg,
            loss_energy=None,  # DuPL has no energy term
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if self.train_cfg.consistency_target not in CONSISTENCY_TARGETS:
            raise ValueError('train_cfg.consistency_target must be one of '
                             f'{CONSISTENCY_TARGETS}, got '
                             f'{self.train_cfg.consistency_target!r}')
        self._check_branch(self.test_cfg.branch)
        self.loss_dis = MODELS.build(loss_dis)
        self.loss_consistency = MODELS.build(loss_consistency)
        pre = self.data_preprocessor
        self.strong_view = StrongView(
            mean=pre.mean.flatten().tolist(),
            std=pre.std.flatten().tolist(),
            **self.train_cfg.strong_view)
        # 1-based index of the network used by test_cfg.branch='best'; a
        # buffer, so the decision is saved and loaded with the weights.
        self.register_buffer('best_branch', torch.tensor(1))
        self.validate_all_branches = False

    def build_networks(self, network: ConfigType) -> None:
        # mmengine's ModuleList, not torch's: BaseModule.init_weights only
        # recurses into children that have init_weights, so a torch
        # ModuleList would leave both networks at their random init instead
        # of the pretrained backbone.
        self.students = ModuleList([MODELS.build(network) for _ in range(2)])

    @property
    def networks(self) -> List[ToCoNetwork]:
        return list(self.students)

    def inference_network(self) -> ToCoNetwork:
        """The network of ``test_cfg.branch`` (with 'mean', student 1: its
        features are those of ``extract_feat``)."""
        branch = self.test_branch()
        return self.students[0 if branch == 'mean' else branch - 1]

    # Branch selection --------------------------------------------------
    @staticmethod
    def _check_branch(branch) -> None:
        if branch not in BRANCHES:
            raise ValueError(
                f'test_cfg.branch must be one of {BRANCHES}, got {branch!r}')

    def set_best_branch(self, branch: int) -> None:
        """Record the 1-based network that validated better."""
        self._check_branch(branch)
        self.best_branch.fill_(int(branch))

    def test_branch(self) -> Union[int, str]:
        """1-based network used for inference, or 'mean' (both)."""
        branch = self.test_cfg.branch
        self._check_branch(branch)
        return int(self.best_branch) if branch == 'best' else branch

    # Thresholds --------------------------------------------------------
    def class_thresholds(self, iteration: int) -> Tensor:
        """Per-class high threshold at ``iteration`` (C-1,) or 0-d."""
        cfg = self.train_cfg.dynamic_thr
        if not cfg.enable:
            return torch.tensor(float(cfg.start))
        return cosine_threshold(
            iteration,
            start=cfg.start,
            target=cfg.target,
            max_iters=cfg.max_iters,
            warmup_iters=cfg.warmup_iters,
            origin=cfg.origin)

    def label_threshold(self, cls_label: Tensor) -> Tensor:
        """Per-image (B,) dynamic high threshold at the current iteration:
        the maximum over each image's present classes."""
        return per_image_threshold(
            self.class_thresholds(current_iter()),
            cls_label,
            default=float(self.train_cfg.dynamic_thr.start)).to(cls_label)

    # Training ----------------------------------------------------------
    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        cfg = self.train_cfg
        cls_label = self.cls_labels(data_samples, inputs)
        img_box = self.img_boxes(data_samples)
        high_thr = self.label_threshold(cls_label)
        losses = dict()
        feats, cams, seg_logits = [], [], []
        for k, network in enumerate(self.students, start=1):
            feat = network.extract_feat(inputs)
            for name, value in network.cls_losses(feat, data_samples).items():
                losses[f'{name}_{k}'] = value
            cam, aux_cam = self.training_cams(network, inputs, feat)
            losses[f'{self.loss_ptc.loss_name}_{k}'] = self.gated(
                cfg.ptc_start_iter, lambda: self.ptc_loss(
                    feat[0], aux_cam, cls_label, img_box, high_thr), feat[0])
            feats.append(feat)
            cams.append((cam, aux_cam))
            seg_logits.append(network.decode_head(feat))

        losses[self.loss_dis.loss_name] = self.gated(
            cfg.dis_start_iter,
            lambda: self.loss_dis(feats[0][0], feats[1][0]),
            [f[0] for f in feats])

        if not self.gate_open(cfg.seg_start_iter):
            # Keep the heads in the graph (DDP) without training them yet.
            for k in (1, 2):
                losses[f'{self.loss_seg.loss_name}_{k}'] = \
                    seg_logits[k - 1].sum() * 0.
            return losses

        images_01 = self.images_01(inputs)
        labels, unfiltered, filtered = self._labels(images_01, cams,
                                                    seg_logits, cls_label,
                                                    img_box, high_thr)
        # Cross supervision (Eq. 4): network k learns from the other's label.
        for k in (1, 2):
            losses[f'{self.loss_seg.loss_name}_{k}'] = self.loss_seg(
                seg_logits[k - 1], labels[2 - k])
        if self.filtering():
            consistency = self._consistency(inputs, images_01, seg_logits,
                                            labels, unfiltered, filtered)
            if not self.gate_open(cfg.consistency_start_iter):
                # The code computes it and weights it 0 (graph kept).
                consistency = {k: v * 0. for k, v in consistency.items()}
            losses.update(consistency)
        return losses

    def filtering(self) -> bool:
        """Whether noise filtering (and the consistency) is on now."""
        return is_active(self.train_cfg.filter_start_iter, 'from')

    def _labels(
        self, images_01: Tensor, cams: Sequence[Tuple[Tensor, Tensor]],
        seg_logits: Sequence[Optional[Tensor]], cls_label: Tensor,
        img_box: List, high_thr: Tensor
    ) -> Tuple[List[Tensor], List[Tensor], List[Optional[Tensor]]]:
        """Each network's label (filtered when filtering is on), the
        unfiltered labels, and the filtered-pixel masks (or None)."""
        labels = [
            self.refine_label(images_01, cam, aux_cam, cls_label, img_box,
                              high_thr) for cam, aux_cam in cams
        ]
        unfiltered = list(labels)
        filtered = [None, None]
        if self.filtering():
            for k in range(2):
                labels[k], filtered[k] = self._filter(seg_logits[k], labels[k])
        return labels, unfiltered, filtered

    def _pseudo_labels(self, inputs: Tensor,
                       data_samples: SampleList) -> List[Tensor]:
        """Per network, the label it produces (and the other learns from)."""
        if not self.gate_open(self.train_cfg.seg_start_iter):
            return [self.ignore_labels(inputs)] * 2
        cls_label = self.cls_labels(data_samples, inputs)
        cams = [self.training_cams(n, inputs) for n in self.students]
        # The segmentation forward only feeds the noise filter.
        seg_logits = [
            n.seg_logits(inputs) if self.filtering() else None
            for n in self.students
        ]
        return self._labels(
            self.images_01(inputs), cams, seg_logits, cls_label,
            self.img_boxes(data_samples), self.label_threshold(cls_label))[0]

    def _visual_maps(self,
                     inputs: Tensor,
                     data_samples: SampleList,
                     branch: int = 1) -> Dict[str, Tensor]:
        """ToCo's maps of student ``branch`` (1 or 2) with the dynamic
        threshold, and, once filtering is on, 'label_filtered': its label
        after noise filtering on its own loss (the label the other student
        learns from)."""
        if branch not in (1, 2):
            raise ValueError(f'branch must be 1 or 2, got {branch!r}')
        network = self.students[branch - 1]
        maps = self.network_visual_maps(network, inputs, data_samples)
        if self.filtering():
            maps['label_filtered'] = self._filter(
                network.seg_logits(inputs), maps['label_refined'])[0]
        return maps

    def _filter(self, seg_logits: Tensor,
                label: Tensor) -> Tuple[Tensor, Tensor]:
        """Adaptive noise filtering of a network's own label (Eq. 6-7)."""
        with torch.no_grad():
            logits = F.interpolate(
                seg_logits.detach().float(),
                size=label.shape[-2:],
                mode='bilinear',
                align_corners=False)
            ce = F.cross_entropy(
                logits, label, ignore_index=IGNORE_INDEX, reduction='none')
        return filter_noisy_labels(ce, label, **self.train_cfg.noise_filter)

    def _consistency(self, inputs: Tensor, images_01: Tensor,
                     seg_logits: List[Tensor], labels: List[Tensor],
                     unfiltered: List[Tensor],
                     filtered: List[Tensor]) -> Dict[str, Tensor]:
        """Strong-view consistency of both networks (Eq. 8)."""
        strong = self.strong_view(images_01 * 255.)
        size = inputs.shape[-2:]
        losses = dict()
        for k, network in enumerate(self.students, start=1):
            other = 2 - k
            strong_logits = self.strong_view.invert(
                network.seg_logits(strong), size)
            if self.train_cfg.consistency_target == 'code':
                # Every pixel the supervising label leaves unlabelled, against
                # the network's own confident weak-view prediction.
                loss = self.loss_consistency(
                    strong_logits,
                    labels[other] == IGNORE_INDEX,
                    weak_logits=seg_logits[k - 1].detach())
            else:
                # Eq. 8 read literally: the filtered pixels, supervised by
                # the (transformed) pseudo label they were filtered from.
                loss = self.loss_consistency(
                    strong_logits, filtered[other], target=unfiltered[other])
            losses[f'{self.loss_consistency.loss_name}_{k}'] = loss
        return losses

    # Inference ---------------------------------------------------------
    def predict_scores(
            self,
            inputs: Tensor,
            data_samples: OptSampleList = None) -> Tuple[Tensor, Dict]:
        """In validation mode (``validate_all_branches``) both networks
        predict, each once: ``pred_sem_seg_branch{k}`` beside the
        inference network's ``pred_sem_seg``."""
        if not self.validate_all_branches:
            return super().predict_scores(inputs, data_samples)
        scores = [
            self.network_inference(network, inputs, data_samples)
            for network in self.students
        ]
        extra = {
            f'pred_sem_seg_branch{k}': value
            for k, value in enumerate(scores, start=1)
        }
        branch = self.test_branch()
        main = self.mean_scores(scores) if branch == 'mean' else scores[branch
                                                                        - 1]
        return main, extra

    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        if self.test_branch() != 'mean':
            return super().inference(inputs, data_samples)
        return self.mean_scores([
            self.network_inference(network, inputs, data_samples)
            for network in self.students
        ])

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        if self.test_branch() != 'mean':
            return super()._forward(inputs, data_samples)
        return self.mean_scores(
            [network.seg_logits(inputs) for network in self.students],
            output='seg')

    def mean_scores(self,
                    scores: Sequence[Tensor],
                    output: Optional[str] = None) -> Tensor:
        """Average the networks' (B, C, H, W) scores.

        Segmentation logits (``test_cfg.output='seg'``) are averaged as
        probabilities and returned as their log: the argmax and a softmax
        (the CRF's ``prob_mode='softmax'``) see the mean probabilities. CAM
        score maps are averaged as they are.
        """
        if (output or self.test_cfg.output) != 'seg':
            return torch.stack(list(scores)).mean(0)
        probs = torch.stack([s.softmax(dim=1) for s in scores]).mean(0)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
