# Copyright (c) OpenMMLab. All rights reserved.
"""ToCo's class token contrast (CTC) loss with negative local crops."""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from mmseg_wsss.registry import MODELS


@MODELS.register_module()
class ClassTokenContrastLoss(nn.Module):
    """InfoNCE-like contrast of class tokens (ToCo's ``CTCLoss_neg``).

    official_code_notes 1.6 (ToCo ``model/losses.py``, VOC call site
    ``scripts/dist_train_voc_seg_neg.py``). Per image, with the projected
    teacher class tokens ``t_g`` of the two global views (``g = 1, 2``),
    the projected student class tokens ``s_v`` of all ``V`` student views
    (ToCo: the 2 global views and 8 local 96x96 crops, ``V = 10``) and a
    flag per student view (positive, or negative: a local crop whose ROI
    fraction is <= 0.2, see :func:`crop_from_roi`)::

        e_gv = exp(t_g . s_v / temperature)       (plain dot product)
        n_g  = sum_{v negative} e_gv
        l_g  = sum_{v positive} -log(e_gv / (e_gv + n_g + eps))
               + log(1 + n_g + eps)
        loss_b = (l_1 + l_2) / 2 / (P + eps)      P = number of positives

    and the loss is the mean of ``loss_b`` over images. The two global
    student views are always positive (also against the teacher token of
    the *same* view, which the code does not skip). The extra
    ``log(1 + n_g + eps)`` is the ``else:`` clause of the code's
    ``for j in pos_inds:`` loop, which always runs once after it (a term
    with a "positive logit" of ``exp(0) = 1``); it is kept, but not
    counted in ``P``. ``eps = 1e-4``. With G teacher tokens the sum over
    ``g`` is divided by G (the code's ``/ 2`` for its two global views).

    Computed in float32 with log-sum-exp (same value, no ``exp`` overflow
    for large dot products; the code exponentiates directly).

    Args:
        temperature (float): 0.5 on VOC, 1.0 on COCO. Defaults to 0.5.
        eps (float): The code's 1e-4. Defaults to 1e-4.
        loss_weight (float): Defaults to 0.5 (ToCo ``w_ctc``).
        loss_name (str): Defaults to 'loss_ctc'.
    """

    def __init__(self,
                 temperature: float = 0.5,
                 eps: float = 1e-4,
                 loss_weight: float = 0.5,
                 loss_name: str = 'loss_ctc') -> None:
        super().__init__()
        self.temperature = temperature
        self.eps = eps
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                student: Tensor,
                teacher: Tensor,
                positive: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            student (Tensor): (B, V, K) projected student class tokens, the
                global views first (ToCo's crop-major ``(V * B, K)`` output
                is ``reshape(V, B, K).transpose(0, 1)``).
            teacher (Tensor): (B, G, K) projected teacher class tokens of
                the G global views (ToCo: 2); detached here.
            positive (Tensor, optional): (B, V) bool (or 0/1) flags, True
                for positive student views. Default: all positive.

        Returns:
            Tensor: Scalar weighted loss.
        """
        if student.dim() != 3 or teacher.dim() != 3 or \
                student.shape[0] != teacher.shape[0] or \
                student.shape[2] != teacher.shape[2]:
            raise ValueError(f'student {tuple(student.shape)} must be '
                             f'(B, V, K) and teacher {tuple(teacher.shape)} '
                             '(B, G, K)')
        B, V, _ = student.shape
        G = teacher.shape[1]
        if positive is None:
            positive = torch.ones(B, V, dtype=torch.bool)
        positive = positive.to(device=student.device).bool()
        if positive.shape != (B, V):
            raise ValueError(f'positive {tuple(positive.shape)} must be '
                             f'(B, V) = {(B, V)}')
        with torch.autocast(device_type=student.device.type, enabled=False):
            # (B, G, V) logits of exp(logit): t_g . s_v / temperature.
            logit = torch.einsum('bgk,bvk->bgv',
                                 teacher.detach().float(),
                                 student.float()) / self.temperature
            neg_logit = logit.masked_fill(positive[:, None], float('-inf'))
            log_eps = torch.full_like(logit[..., :1], float(self.eps)).log()
            # log(n_g + eps), (B, G, 1): the negatives' exp-sum plus eps.
            log_neg = torch.logsumexp(
                torch.cat([neg_logit, log_eps], dim=-1), dim=-1, keepdim=True)
            # -log(e / (e + n + eps)) = log(e + n + eps) - log(e)
            #                         = softplus(log(n + eps) - logit).
            pos_terms = torch.nn.functional.softplus(log_neg - logit)
            pos_terms = (pos_terms * positive[:, None]).sum(dim=-1)
            # The loop's ``else`` term: log(1 + n + eps).
            else_term = torch.nn.functional.softplus(log_neg[..., 0])
            per_view = pos_terms + else_term  # (B, G)
            num_pos = positive.sum(dim=1).float()
            per_image = per_view.sum(dim=1) / G / (num_pos + self.eps)
            loss = per_image.mean()
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item (a ``loss_`` prefix makes it backward)."""
        return self._loss_name
