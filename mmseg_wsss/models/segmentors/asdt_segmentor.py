# Copyright (c) OpenMMLab. All rights reserved.
import copy
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..postprocess import CRFPostProcessor
from ..wsss import IGNORE_INDEX, current_iter, pulse_high
from .rrm_segmentor import RRMSegmentor

ALTERNATION_FORMS = ('paper', 'released')
OUTPUTS = ('fused', 'student', 'seg_teacher')


@MODELS.register_module()
class ASDTSegmentor(RRMSegmentor):
    """ASDT (TIP 2023): alternate self-dual teaching on RRM.

    Three branches on one backbone (paper Sec. 3, Fig. 2):

    - the **class teacher** (``cls_head``: GAP + FC, Eq. 2), whose CAMs give
      the binary label B^ct and the reliability mask R^ct: RRM's reliable
      label (unsure pixels ignored);
    - the **seg teacher** (``decode_head``), trained from [B^ct, R^ct]
      (Eq. 3) with the energy term L_str;
    - the **student** (``student_head``, the same architecture with its
      own parameters), trained by the alternate distillation loss (Eq.
      4-6): from the class teacher's [B^ct, R^ct] while the pulse-width
      signal is high (the first ``T_h = period / tau`` iterations of each
      period) and from B^st = argmax CRF(P^st), the seg teacher's
      prediction refined by the dense CRF, while it is low.

    Eqs. 3, 5 and 6 are printed without the minus sign of a cross-entropy;
    they are read as the cross-entropy over the labelled pixels of the
    present classes (and background), the form RRM's loss has: here
    ``loss_seg`` (background and foreground cross-entropies) on every
    label, pixels of B^st whose class is absent from the image ignored
    (Eq. 6 sums over C+ only).

    ``train_cfg.alternation``:

    - ``form='paper'`` (default; the released code drops this part): the
      alternation above, from ``start_iter`` on (before it the student
      learns from the class teacher: the code starts its alternate label
      after iteration 1000).
    - ``form='released'``: the released code's training. Both heads learn
      from the class teacher's label; the code computes a CRF label of the
      seg teacher for the student in 25 of every 150 iterations and then
      discards it (the line that uses it is commented out), so it is not
      computed here.

    The signal reads mmengine's iteration from the MessageHub, so it
    survives ``--resume``; ``pw_high`` in the training log is 1 while the
    class teacher teaches the student.

    Inference: the element-wise maximum of the seg teacher's and the
    student's softmax maps (Eq. 1, not renormalised), then the CRF of
    ``test_cfg.crf``; ``test_cfg.output`` 'student' or 'seg_teacher' gives
    one branch.

    Args:
        student_head (dict, optional): The student's :class:`RRMSegHead`;
            defaults to a copy of ``decode_head``'s config.
        train_cfg (dict): RRM's keys and ``alternation=dict(form, period,
            tau, start_iter)``, ``student_crf`` (:class:`CRFPostProcessor`
            arguments of B^st's CRF: the code's test-time 'rrm' preset,
            Gaussian 3/3, bilateral 83/5/4).
        test_cfg (dict): RRM's keys and ``output``.
        **kwargs: :class:`RRMSegmentor` arguments.
    """
    DEFAULT_TRAIN_CFG = dict(
        RRMSegmentor.DEFAULT_TRAIN_CFG,
        alternation=dict(form='paper', period=150, tau=5, start_iter=1001),
        student_crf=dict(
            preset='rrm',
            xy_scale=1.0,
            workers=2,
            backend='pydensecrf',
            device='cpu'))
    DEFAULT_TEST_CFG = dict(RRMSegmentor.DEFAULT_TEST_CFG, output='fused')
    STUDENT_SUFFIX = '_student'

    def __init__(self,
                 backbone: ConfigType,
                 cls_head: ConfigType,
                 decode_head: ConfigType,
                 student_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        super().__init__(
            backbone=backbone,
            cls_head=cls_head,
            decode_head=decode_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            **kwargs)
        if student_head is None:
            student_head = copy.deepcopy(decode_head)
        self.student_head = MODELS.build(student_head)
        if self.student_head.num_classes != self.num_classes:
            raise ValueError(
                f'student_head has {self.student_head.num_classes} classes, '
                f'decode_head {self.num_classes}')
        alt = self.train_cfg.alternation
        if alt.form not in ALTERNATION_FORMS:
            raise ValueError(f'train_cfg.alternation.form must be one of '
                             f'{ALTERNATION_FORMS}, got {alt.form!r}')
        if alt.tau < 1:
            raise ValueError(f'train_cfg.alternation.tau = T / T_h must be '
                             f'>= 1, got {alt.tau}')
        self.high_iters = int(round(alt.period / alt.tau))
        # Checked now rather than at the first low-level iteration.
        pulse_high(0, alt.period, self.high_iters)
        if self.test_cfg.output not in OUTPUTS:
            raise ValueError(f'test_cfg.output must be one of {OUTPUTS}, '
                             f'got {self.test_cfg.output!r}')
        self.student_crf = CRFPostProcessor(**self.train_cfg.student_crf)

    # Alternate signal --------------------------------------------------
    def student_teacher(self, iteration: Optional[int] = None) -> str:
        """Which teacher the student learns from at ``iteration`` (None:
        the current one): 'class' or 'seg'."""
        alt = self.train_cfg.alternation
        if alt.form == 'released':
            return 'class'
        it = current_iter() if iteration is None else iteration
        if it < alt.start_iter:
            return 'class'
        return 'class' if pulse_high(it, alt.period, self.high_iters) \
            else 'seg'

    @torch.no_grad()
    def seg_teacher_label(self, inputs: Tensor, teacher_logits: Tensor,
                          cls_label: Tensor, img_box: List) -> Tensor:
        """B^st: the dense CRF of the seg teacher's softmax at the crop
        size, argmax; pixels of classes absent from the image ignored.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised crops.
            teacher_logits (Tensor): (B, K, h, w) seg teacher logits.
            cls_label (Tensor): (B, C) image labels.
            img_box (list): Per image valid box.

        Returns:
            Tensor: (B, H, W) int64 labels.
        """
        probs = F.interpolate(
            teacher_logits.detach().float(),
            size=inputs.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners).softmax(dim=1)
        labels = self.student_crf.refine(
            self.crf_images(inputs), list(probs.cpu().numpy()))
        label = torch.from_numpy(np.stack(labels)).to(inputs.device)
        present = torch.cat(
            [cls_label.new_ones(cls_label.shape[0], 1), cls_label], dim=1) > 0
        keep = torch.gather(present, 1, label.flatten(1)).view_as(label)
        label = torch.where(keep, label, torch.full_like(label, IGNORE_INDEX))
        return self.mask_padding(label, img_box)

    # Training ----------------------------------------------------------
    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """L_ce + L_d^{ct->st} + L_ad (paper Eqs. 2-6)."""
        feat, losses, label = self.class_teacher(inputs, data_samples)
        img_box = self.img_boxes(data_samples)
        teacher_logits = self.decode_head(feat)
        losses.update(self.seg_losses(inputs, teacher_logits, label, img_box))
        student_label = label
        teacher = self.student_teacher()
        # Logged (not a loss): 1 while the class teacher teaches the student.
        losses['pw_high'] = torch.tensor(
            float(teacher == 'class'), device=inputs.device)
        if teacher == 'seg':
            start = time.perf_counter()
            student_label = self.seg_teacher_label(
                inputs, teacher_logits, self.cls_labels(data_samples, inputs),
                img_box)
            # B^st's CRF counts in the logged CRF time too.
            losses['time_crf'] = losses['time_crf'] + (
                time.perf_counter() - start)
        losses.update(
            self.seg_losses(inputs, self.student_head(feat), student_label,
                            img_box, self.STUDENT_SUFFIX))
        return losses

    def _pseudo_labels(self, inputs: Tensor,
                       data_samples: SampleList) -> List[Tensor]:
        """[the seg teacher's label, the student's label] at the current
        iteration."""
        label = super()._pseudo_labels(inputs, data_samples)
        if self.student_teacher() == 'class':
            return [label, label.clone()]
        return [
            label,
            self.seg_teacher_label(inputs, self._forward(inputs),
                                   self.cls_labels(data_samples, inputs),
                                   self.img_boxes(data_samples))
        ]

    # Inference ---------------------------------------------------------
    def head_probs(self, inputs: Tensor) -> Dict[str, Tensor]:
        """Softmax of the seg teacher ('seg') and student ('student') at
        the input size."""
        feat = self.extract_feat(inputs)
        out = {}
        for name, head in (('seg', self.decode_head), ('student',
                                                       self.student_head)):
            out[name] = F.interpolate(
                head(feat),
                size=inputs.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners).softmax(dim=1)
        return out

    def fuse_heads(self, probs: Dict[str, Tensor]) -> Tensor:
        """Eq. 1: element-wise max (or one branch, ``test_cfg.output``)."""
        output = self.test_cfg.output
        if output == 'student':
            return probs['student']
        if output == 'seg_teacher':
            return probs['seg']
        return torch.maximum(probs['seg'], probs['student'])
