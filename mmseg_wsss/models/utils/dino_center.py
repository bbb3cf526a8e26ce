# Copyright (c) OpenMMLab. All rights reserved.
"""DINO's centring and sharpening of teacher outputs."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce
from torch import Tensor


class DINOCenter(nn.Module):
    """A running centre of teacher outputs, and the teacher's targets.

    Targets (no gradient)::

        p_t = softmax((t - center) / temperature, dim=-1)

    Subtracting the centre keeps one dimension from dominating (collapse to
    a constant), the low temperature sharpens (DINO; FSR's ``FSRLoss``).

    Update (official_code_notes 3; FSR ``update_class_center`` /
    ``update_patch_center``)::

        center = center * momentum + batch_center * (1 - momentum)

    where ``batch_center`` is the mean over images of each image's mean
    output (for (B, N, K) patch outputs: the mean over its N tokens first),
    pooled over all ranks: the per-image means and the image count are
    summed with one all-reduce when distributed (FSR divides the reduced
    sum by ``B * world_size``, the same for equal per-rank batches). The
    centre lives in a buffer, so checkpoints carry it.

    Args:
        dim (int): Output dimension K.
        momentum (float): Centre momentum. Defaults to 0.9 (FSR, DINO).
    """

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        if not 0. <= momentum <= 1.:
            raise ValueError(f'momentum must be in [0, 1], got {momentum}')
        self.dim = dim
        self.momentum = momentum
        self.register_buffer('center', torch.zeros(1, dim))

    @torch.no_grad()
    def forward(self, teacher: Tensor, temperature: float) -> Tensor:
        """Centred and sharpened teacher probabilities.

        Args:
            teacher (Tensor): (..., K) teacher logits.
            temperature (float): Teacher temperature (FSR 0.04 -> 0.07).

        Returns:
            Tensor: (..., K) float32 probabilities (rows sum to 1).
        """
        self._check(teacher)
        return F.softmax((teacher.float() - self.center) / temperature, dim=-1)

    @torch.no_grad()
    def update(self, teacher: Tensor) -> None:
        """Move the centre towards the batch centre of ``teacher``.

        Args:
            teacher (Tensor): (B, K) or (B, N, K) teacher logits.
        """
        self._check(teacher)
        per_image = teacher.float()
        if per_image.dim() > 2:
            per_image = per_image.flatten(1, -2).mean(dim=1)
        elif per_image.dim() == 1:
            per_image = per_image[None]
        # One all-reduce for the sum of per-image means and their count
        # (a no-op outside distributed training).
        total = torch.cat(
            [per_image.sum(dim=0),
             per_image.new_tensor([per_image.shape[0]])])
        all_reduce(total, op='sum')
        batch_center = total[:-1] / total[-1]
        self.center.copy_(self.center * self.momentum + batch_center *
                          (1 - self.momentum))

    def _check(self, teacher: Tensor) -> None:
        if teacher.shape[-1] != self.dim:
            raise ValueError(f'teacher outputs have {teacher.shape[-1]} '
                             f'dims, the centre {self.dim}')

    def extra_repr(self) -> str:
        return f'dim={self.dim}, momentum={self.momentum}'
