# Copyright (c) OpenMMLab. All rights reserved.
"""FSR's self-reinforcement loss on the masked patch tokens (unc.FSR, paper
Eq. 8)."""
from typing import Optional

import torch
from torch import Tensor

from mmseg_wsss.registry import MODELS
from .dino_distill_loss import DINODistillLoss
from .utils import masked_mean

_REDUCTIONS = ('masked_mean', 'masked_sum')


@MODELS.register_module()
class FSRPatchLoss(DINODistillLoss):
    """Teacher patch tokens (unmasked view) -> student patch tokens at the
    masked positions of the same view.

    official_code_notes 3 (FSR ``FSRLoss.forward_patch``): per token
    ``ce_bn = -sum_k softmax((t_bn - c) / tt)_k * log_softmax(s_bn / ts)_k``
    with the teacher's projected patch tokens ``t`` of view 2 *without*
    masking, the student's ``s`` of view 2 *with* masking, the patch centre
    ``c`` (its own :class:`DINOCenter`, updated after the loss with all the
    teacher's patch tokens) and the temperatures of :class:`FSRClassLoss`.
    Reduction:

    * ``'masked_mean'`` (the code, default): each image's mean over its
      masked tokens, ``sum_n M_bn ce_bn / max(sum_n M_bn, 1)``, then the
      mean over images. An image without masked tokens contributes 0 (and
      still counts in the mean), never NaN.
    * ``'masked_sum'`` (paper Eq. 8 read literally): each image's sum over
      its masked tokens, then the mean over images.

    Args:
        out_dim (int): Projector output dimension K. Defaults to 4096.
        student_temp (float): Defaults to 0.1.
        teacher_temp (float): Defaults to 0.07.
        warmup_teacher_temp (float): Defaults to 0.04.
        temp_warmup_iters (int): Defaults to 2500 (``max_iters / 8``).
        center_momentum (float): Defaults to 0.9.
        reduction (str): 'masked_mean' or 'masked_sum'. Defaults to
            'masked_mean'.
        loss_weight (float): Defaults to 0.1 (FSR ``w_patch``).
        loss_name (str): Defaults to 'loss_fsr_patch'.
    """

    def __init__(self,
                 out_dim: int = 4096,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.07,
                 warmup_teacher_temp: float = 0.04,
                 temp_warmup_iters: int = 2500,
                 center_momentum: float = 0.9,
                 reduction: str = 'masked_mean',
                 loss_weight: float = 0.1,
                 loss_name: str = 'loss_fsr_patch') -> None:
        super().__init__(out_dim, student_temp, teacher_temp,
                         warmup_teacher_temp, temp_warmup_iters,
                         center_momentum, loss_weight, loss_name)
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction must be one of {_REDUCTIONS}, got '
                             f'{reduction!r}')
        self.reduction = reduction

    def forward(self,
                student_patch: Tensor,
                teacher_patch: Tensor,
                mask: Tensor,
                iteration: Optional[int] = None,
                update_center: bool = True) -> Tensor:
        """Compute the loss (then update the patch centre).

        Args:
            student_patch (Tensor): (B, N, K) projected student patch tokens
                of the masked view.
            teacher_patch (Tensor): (B, N, K) projected teacher patch tokens
                of the same view, unmasked.
            mask (Tensor): (B, N) bool (or 0/1), True at masked tokens.
            iteration (int, optional): For the teacher temperature; default
                ``current_iter()``.
            update_center (bool): Update the centre afterwards. Defaults to
                True.

        Returns:
            Tensor: Scalar weighted loss.
        """
        if student_patch.shape != teacher_patch.shape or \
                student_patch.dim() != 3:
            raise ValueError(
                f'student {tuple(student_patch.shape)} and teacher '
                f'{tuple(teacher_patch.shape)} patch tokens must both be '
                '(B, N, K)')
        if mask.shape != student_patch.shape[:2]:
            raise ValueError(f'mask {tuple(mask.shape)} must be (B, N) = '
                             f'{tuple(student_patch.shape[:2])}')
        teacher_patch = teacher_patch.detach()
        with torch.autocast(
                device_type=student_patch.device.type, enabled=False):
            ce = self.cross_entropy(student_patch, teacher_patch, iteration)
            weight = mask.to(device=ce.device, dtype=ce.dtype)
            if self.reduction == 'masked_mean':
                # The project's one "mean over a set, 0 when empty" (the
                # code's ``clamp(min=1.0)``), per image.
                per_image = torch.stack(
                    [masked_mean(c, w) for c, w in zip(ce, weight)])
            else:
                per_image = (ce * weight).sum(dim=1)
            loss = per_image.mean()
        if update_center:
            self.center.update(teacher_patch)
        return self.loss_weight * loss
