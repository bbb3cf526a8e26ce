# Copyright (c) OpenMMLab. All rights reserved.
"""FSR's self-reinforcement loss on the aggregated class tokens (cer.FSR,
paper Eq. 9)."""
from typing import Optional

import torch
from torch import Tensor

from mmseg_wsss.registry import MODELS
from .dino_distill_loss import DINODistillLoss


@MODELS.register_module()
class FSRClassLoss(DINODistillLoss):
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
        super().__init__(out_dim, student_temp, teacher_temp,
                         warmup_teacher_temp, temp_warmup_iters,
                         center_momentum, loss_weight, loss_name)

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
            loss = self.cross_entropy(student_cls, teacher_cls,
                                      iteration).mean()
        if update_center:
            self.center.update(teacher_cls)
        return self.loss_weight * loss
