# Copyright (c) OpenMMLab. All rights reserved.
"""FSR's self-reinforcement loss on the aggregated class tokens (cer.FSR,
paper Eq. 9)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.models.utils.dino_center import DINOCenter
from mmseg_wsss.models.wsss.distillation_schedules import teacher_temperature
from mmseg_wsss.models.wsss.schedule import current_iter
from mmseg_wsss.registry import MODELS


def soft_cross_entropy(student: Tensor, target: Tensor,
                       student_temp: float) -> Tensor:
    """``-sum_k target_k * log_softmax(student / student_temp)_k``.

    Args:
        student (Tensor): (..., K) student logits.
        target (Tensor): (..., K) teacher probabilities (no gradient).
        student_temp (float): Student temperature (FSR, DINO: 0.1).

    Returns:
        Tensor: (...) float32 cross-entropy per row.
    """
    log_p = F.log_softmax(student.float() / student_temp, dim=-1)
    return -(target * log_p).sum(dim=-1)


@MODELS.register_module()
class FSRClassLoss(nn.Module):
    """Teacher class token of view 1 -> student class token of view 2.

    official_code_notes 3 (FSR ``FSRLoss.forward_class``)::

        loss = mean_b( -sum_k softmax((t_b - c) / tt)_k
                              * log_softmax(s_b / ts)_k )

    with the teacher's projected class token ``t`` of the *unmasked* first
    view, the student's ``s`` of the *masked* second view (the only
    cross-view term of the code, and the paper's Eq. 9), the class centre
    ``c`` (:class:`DINOCenter`, momentum 0.9, updated *after* the loss with
    the teacher tokens, all-reduced across ranks), student temperature
    ``ts = 0.1`` and the teacher temperature ``tt`` warmed up from 0.04 to
    0.07 over ``temp_warmup_iters`` (:func:`teacher_temperature`; FSR:
    ``int(max_iters / 8)``). It is computed in float32 even under AMP:
    dividing by a temperature of 0.04 could overflow float16 logits.

    Args:
        out_dim (int): Projector output dimension K. Defaults to 4096.
        student_temp (float): Defaults to 0.1.
        teacher_temp (float): Temperature after the warm-up. Defaults to
            0.07.
        warmup_teacher_temp (float): Temperature at iteration 0. Defaults
            to 0.04.
        temp_warmup_iters (int): Warm-up length. Defaults to 2500 (VOC:
            20,000 / 8; COCO: 10,000).
        center_momentum (float): Defaults to 0.9.
        loss_weight (float): Defaults to 0.1 (FSR ``w_class``).
        loss_name (str): Defaults to 'loss_fsr_class'.
    """

    def __init__(self,
                 out_dim: int = 4096,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.07,
                 warmup_teacher_temp: float = 0.04,
                 temp_warmup_iters: int = 2500,
                 center_momentum: float = 0.9,
                 loss_weight: float = 0.1,
                 loss_name: str = 'loss_fsr_class') -> None:
        super().__init__()
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.warmup_teacher_temp = warmup_teacher_temp
        self.temp_warmup_iters = temp_warmup_iters
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.center = DINOCenter(out_dim, center_momentum)

    def temperature(self, iteration: Optional[int] = None) -> float:
        """Teacher temperature at ``iteration`` (default: current)."""
        it = current_iter() if iteration is None else iteration
        return teacher_temperature(it, self.temp_warmup_iters,
                                   self.warmup_teacher_temp, self.teacher_temp)

    def forward(self,
                student_cls: Tensor,
                teacher_cls: Tensor,
                iteration: Optional[int] = None,
                update_center: bool = True) -> Tensor:
        """Compute the loss (then update the class centre).

        Args:
            student_cls (Tensor): (B, K) projected student class tokens of
                the masked view.
            teacher_cls (Tensor): (B, K) projected teacher class tokens of
                the other, unmasked view.
            iteration (int, optional): For the teacher temperature; default
                ``current_iter()``.
            update_center (bool): Update the centre afterwards. Defaults to
                True.

        Returns:
            Tensor: Scalar weighted loss.
        """
        if student_cls.shape != teacher_cls.shape or student_cls.dim() != 2:
            raise ValueError(
                f'student {tuple(student_cls.shape)} and teacher '
                f'{tuple(teacher_cls.shape)} class tokens must both be '
                '(B, K)')
        teacher_cls = teacher_cls.detach()
        with torch.autocast(
                device_type=student_cls.device.type, enabled=False):
            target = self.center(teacher_cls, self.temperature(iteration))
            loss = soft_cross_entropy(student_cls, target,
                                      self.student_temp).mean()
        if update_center:
            self.center.update(teacher_cls)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item (a ``loss_`` prefix makes it backward)."""
        return self._loss_name
