# Copyright (c) OpenMMLab. All rights reserved.
"""The teacher-target machinery shared by FSR's two losses (DINO style)."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg_wsss.models.utils.dino_center import DINOCenter
from mmseg_wsss.models.wsss.distillation_schedules import teacher_temperature
from mmseg_wsss.models.wsss.schedule import current_iter


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


class DINODistillLoss(nn.Module):
    """Base of a loss from centred, sharpened teacher targets.

    Holds the student temperature, the teacher temperature warm-up
    (:func:`teacher_temperature`), the centre (:class:`DINOCenter`), the
    weight and the loss name; subclasses (:class:`FSRClassLoss`,
    :class:`FSRPatchLoss`) compare student tokens with :meth:`targets`.

    Args:
        out_dim (int): Projector output dimension K.
        student_temp (float): Student temperature.
        teacher_temp (float): Teacher temperature after the warm-up.
        warmup_teacher_temp (float): Teacher temperature at iteration 0.
        temp_warmup_iters (int): Warm-up length.
        center_momentum (float): Momentum of the centre.
        loss_weight (float): Weight of the loss.
        loss_name (str): Name of the loss item.
    """

    def __init__(self, out_dim: int, student_temp: float, teacher_temp: float,
                 warmup_teacher_temp: float, temp_warmup_iters: int,
                 center_momentum: float, loss_weight: float,
                 loss_name: str) -> None:
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

    def cross_entropy(self, student: Tensor, teacher: Tensor,
                      iteration: Optional[int]) -> Tensor:
        """(...) float32 cross-entropy of the student logits against the
        centred, sharpened teacher targets (``teacher`` already detached;
        call under disabled autocast)."""
        target = self.center(teacher, self.temperature(iteration))
        return soft_cross_entropy(student, target, self.student_temp)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (a ``loss_`` prefix makes it backward)."""
        return self._loss_name
