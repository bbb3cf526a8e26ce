# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.model import ModuleList
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..utils import denormalize_images
from ..wsss import (IGNORE_INDEX, StrongView, cosine_threshold, current_iter,
                    filter_noisy_labels, is_active, per_image_threshold,
                    stack_cls_labels)

# DuPL's VOC schedule (notes 2): classifiers, PTC and the discrepancy loss
# from 0; cross segmentation after cam_iters = 2,000; noise filtering and
# the strong-view consistency after gmm_iters = 8,000.
DEFAULT_TRAIN_CFG = dict(
    dis_start_iter=0,
    ptc_start_iter=0,
    seg_start_iter=2000,
    aux_label_end_iter=0,
    filter_start_iter=8000,
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
DEFAULT_TEST_CFG = dict(branch='best')


@MODELS.register_module()
class DuPLSegmentor(BaseSegmentor):
    """DuPL: dual student with trustworthy progressive learning (CVPR 2024).

    Two complete, independently parameterised students (each a
    :class:`ToCoSegmentor`: ViT, classifier, aux classifier, LargeFOV head,
    PTC) built from the same config, hence from the same pretrained
    weights. Per iteration (losses in the code's order, notes 2):

    1. each student's two classification losses and PTC (the PTC token
       labels use the dynamic threshold);
    2. the discrepancy loss between the two final token maps (Eq. 2-3);
    3. from ``seg_start_iter``: each student's PAR-refined CAM pseudo label,
       with the per-image dynamic threshold (Eq. 5), supervises the *other*
       student's segmentation head (Eq. 4);
    4. from ``filter_start_iter``: each label is first cleaned by adaptive
       noise filtering on its own student's per-pixel loss (Eq. 6-7), and
       each student's strong-view prediction is made consistent with its
       own confident weak-view prediction on the pixels its supervising
       label leaves unlabelled (Eq. 8, code form).

    Inference uses one student: ``test_cfg.branch`` 1, 2 or 'best' (the
    one that validated better, kept in the ``best_branch`` buffer by
    :class:`BestBranchHook`). In validation mode
    (``validate_all_branches``) both students predict and
    :class:`MultiBranchIoUMetric` scores both.

    Args:
        student (dict): :class:`ToCoSegmentor` config of one student, e.g.
            a ToCo config's ``model``: its network, PTC loss, CAM scales,
            ``low_thr`` and PAR are used; its data preprocessor, gates,
            segmentation and energy losses are replaced by DuPL's (DuPL has
            no energy term).
        loss_seg (dict): Segmentation loss of each student (DuPL: 0.2).
        loss_dis (dict): :class:`DiscrepancyLoss` config.
        loss_consistency (dict): :class:`ConsistencyLoss` config.
        train_cfg (dict): Gates (``dis_start_iter``, ``ptc_start_iter``,
            ``seg_start_iter``, ``aux_label_end_iter`` (COCO: aux-CAM labels
            with the fixed start threshold until then), ``filter_start_iter``),
            ``dynamic_thr`` (:func:`cosine_threshold` arguments and
            ``enable``), ``noise_filter`` (:func:`filter_noisy_labels`
            arguments), ``strong_view`` (:class:`StrongView` arguments),
            ``consistency_target`` ('code' or 'paper').
        test_cfg (dict): ``branch`` plus the students' test settings
            (``scales``, ``flip``, ``output``, ``crf`` ...), passed on to
            both students.
        data_preprocessor (dict): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student: ConfigType,
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
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.train_cfg = self._merge(DEFAULT_TRAIN_CFG, train_cfg)
        self.test_cfg = ConfigDict({**DEFAULT_TEST_CFG, **(test_cfg or {})})
        if self.train_cfg.consistency_target not in ('code', 'paper'):
            raise ValueError("train_cfg.consistency_target must be 'code' "
                             'or \'paper\', got '
                             f'{self.train_cfg.consistency_target!r}')
        self._check_branch(self.test_cfg.branch)
        student_test_cfg = {
            k: v
            for k, v in self.test_cfg.items() if k != 'branch'
        }
        students = []
        for _ in range(2):
            cfg = ConfigDict(student)
            cfg.pop('data_preprocessor', None)  # the inputs arrive normalised
            cfg.loss_seg = loss_seg
            cfg.loss_energy = None
            cfg.test_cfg = {**(cfg.get('test_cfg') or {}), **student_test_cfg}
            students.append(MODELS.build(cfg))
        # mmengine's ModuleList, not torch's: BaseModule.init_weights only
        # recurses into children that have init_weights, so a torch
        # ModuleList would leave both students at their random init instead
        # of the pretrained backbone.
        self.students = ModuleList(students)
        self.loss_dis = MODELS.build(loss_dis)
        self.loss_consistency = MODELS.build(loss_consistency)
        pre = self.data_preprocessor
        self.strong_view = StrongView(
            mean=pre.mean.flatten().tolist(),
            std=pre.std.flatten().tolist(),
            **self.train_cfg.strong_view)
        first = self.students[0]
        self.num_classes = first.num_classes
        self.align_corners = first.align_corners
        # 1-based index of the student used by test_cfg.branch='best'; a
        # buffer, so the decision is saved and loaded with the weights.
        self.register_buffer('best_branch', torch.tensor(1))
        self.validate_all_branches = False

    @staticmethod
    def _merge(default: dict, cfg: Optional[dict]) -> ConfigDict:
        merged = ConfigDict(default)
        for key, value in (cfg or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = ConfigDict({**merged[key], **value})
            else:
                merged[key] = value
        return merged

    @staticmethod
    def _check_branch(branch) -> None:
        if branch not in ('best', 1, 2):
            raise ValueError(
                f"test_cfg.branch must be 1, 2 or 'best', got {branch!r}")

    # ------------------------------------------------------------------
    def set_best_branch(self, branch: int) -> None:
        """Record the 1-based student that validated better."""
        self._check_branch(branch)
        self.best_branch.fill_(int(branch))

    def test_branch(self) -> int:
        """1-based student used for inference."""
        branch = self.test_cfg.branch
        self._check_branch(branch)
        return int(self.best_branch) if branch == 'best' else branch

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Backbone features of the inference student."""
        return self.students[self.test_branch() - 1].extract_feat(inputs)

    def class_thresholds(self, iteration: int) -> Tensor:
        """Per-class high threshold at ``iteration`` (C-1,) or 0-d."""
        cfg = self.train_cfg.dynamic_thr
        if not cfg.get('enable', True):
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
            self.class_thresholds(current_iter()), cls_label,
            default=float(self.train_cfg.dynamic_thr.start)).to(cls_label)

    def label_cam(self, cam: Tensor, aux_cam: Tensor) -> Tensor:
        """CAM the segmentation labels come from at this iteration."""
        return cam if is_active(self.train_cfg.aux_label_end_iter) \
            else aux_cam

    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        cfg = self.train_cfg
        cls_label = stack_cls_labels(data_samples).to(inputs)
        img_box = [s.metainfo.get('img_box') for s in data_samples]
        high_thr = self.label_threshold(cls_label)
        losses = dict()
        feats, cams, seg_logits = [], [], []
        for k, student in enumerate(self.students, start=1):
            feat = student.extract_feat(inputs)
            for name, value in student.cls_losses(feat,
                                                  data_samples).items():
                losses[f'{name}_{k}'] = value
            cam, aux_cam = student.training_cams(inputs)
            ptc_name = f'{student.loss_ptc.loss_name}_{k}'
            if is_active(cfg.ptc_start_iter):
                losses[ptc_name] = student.ptc(feat[0], aux_cam, cls_label,
                                               img_box, high_thr)
            else:
                losses[ptc_name] = feat[0].sum() * 0.
            feats.append(feat)
            cams.append((cam, aux_cam))
            seg_logits.append(student.decode_head(feat))

        if is_active(cfg.dis_start_iter):
            losses[self.loss_dis.loss_name] = self.loss_dis(
                feats[0][0], feats[1][0])
        else:
            losses[self.loss_dis.loss_name] = sum(
                f[0].sum() for f in feats) * 0.

        if not is_active(cfg.seg_start_iter):
            # Keep the heads in the graph (DDP) without training them yet.
            for k, student in enumerate(self.students, start=1):
                losses[f'{student.loss_seg.loss_name}_{k}'] = \
                    seg_logits[k - 1].sum() * 0.
            return losses

        images_01 = denormalize_images(inputs, self.data_preprocessor)
        labels = [
            student.pseudo_label(images_01, self.label_cam(cam, aux_cam),
                                 cls_label, img_box, high_thr)
            for student, (cam, aux_cam) in zip(self.students, cams)
        ]
        filtering = is_active(cfg.filter_start_iter)
        filtered = [None, None]
        unfiltered = list(labels)
        if filtering:
            for k in range(2):
                labels[k], filtered[k] = self._filter(seg_logits[k],
                                                      labels[k])
        # Cross supervision (Eq. 4): student k learns from the other's label.
        for k, student in enumerate(self.students, start=1):
            other = 2 - k
            losses[f'{student.loss_seg.loss_name}_{k}'] = student.loss_seg(
                seg_logits[k - 1], labels[other])
        if filtering:
            losses.update(
                self._consistency(inputs, images_01, seg_logits, labels,
                                  unfiltered, filtered))
        return losses

    def _filter(self, seg_logits: Tensor,
                label: Tensor) -> Tuple[Tensor, Tensor]:
        """Adaptive noise filtering of a student's own label (Eq. 6-7)."""
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
        """Strong-view consistency of both students (Eq. 8)."""
        strong = self.strong_view(images_01 * 255.)
        size = inputs.shape[-2:]
        losses = dict()
        for k, student in enumerate(self.students, start=1):
            other = 2 - k
            strong_logits = self.strong_view.invert(
                student._forward(strong), size)
            if self.train_cfg.consistency_target == 'code':
                # Every pixel the supervising label leaves unlabelled, against
                # the student's own confident weak-view prediction.
                loss = self.loss_consistency(
                    strong_logits,
                    labels[other] == IGNORE_INDEX,
                    weak_logits=seg_logits[k - 1].detach())
            else:
                # Eq. 8 read literally: the filtered pixels, supervised by
                # the (transformed) pseudo label they were filtered from.
                loss = self.loss_consistency(
                    strong_logits,
                    filtered[other],
                    target=unfiltered[other])
            losses[f'{self.loss_consistency.loss_name}_{k}'] = loss
        return losses

    # ------------------------------------------------------------------
    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Segmentation logits of the inference student."""
        return self.students[self.test_branch() - 1]._forward(inputs)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        return self.inference(inputs)

    def inference(self,
                  inputs: Tensor,
                  data_samples: OptSampleList = None) -> Tensor:
        return self.students[self.test_branch() - 1].inference(
            inputs, data_samples)

    @torch.no_grad()
    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        if not self.validate_all_branches:
            return self.postprocess_result(
                self.inference(inputs, data_samples), data_samples)
        per_branch = self._predict_all(inputs, data_samples)
        out = self.postprocess_result(per_branch[self.test_branch() - 1][1],
                                      data_samples)
        for k, (preds, _) in enumerate(per_branch, start=1):
            for sample, pred in zip(out, preds):
                sample.set_field(pred, f'pred_sem_seg_branch{k}')
        return out

    def _predict_all(self, inputs: Tensor,
                     data_samples: OptSampleList) -> Sequence:
        """Each student's post-processed predictions and raw scores."""
        results = []
        for student in self.students:
            scores = student.inference(inputs, data_samples)
            samples = self.postprocess_result(scores, data_samples)
            results.append(([s.pred_sem_seg for s in samples], scores))
        return results
