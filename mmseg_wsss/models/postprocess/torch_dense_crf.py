# Copyright (c) OpenMMLab. All rights reserved.
"""The dense CRF of pydensecrf (Krähenbühl and Koltun's ``densecrf``) in
PyTorch: the same energy and inference, batched, on the CPU or the GPU.

Per image, with ``U = -log(clip(p, 1e-5))`` and the two kernels' features
(Gaussian: ``(x, y) / pos_xy_std``; bilateral: ``(x, y) / bi_xy_std, rgb /
bi_rgb_std``), each filtered with a permutohedral lattice
(:class:`PermutohedralLattice`) and symmetrically normalised
(``n = 1 / sqrt(filter(1))``)::

    Q = softmax(-U)
    repeat iters:  Q = softmax(-U + sum_k w_k * n_k * filter_k(n_k * Q))

which is ``DenseCRF2D`` with ``addPairwiseGaussian`` /
``addPairwiseBilateral`` (Potts compatibility, ``DIAG_KERNEL``,
``NORMALIZE_SYMMETRIC``) and ``inference``. The lattice of a batch holds
every image (their points never interact), so one call refines a batch.
"""
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .permutohedral import PermutohedralLattice

_PROB_CLIP = 1e-5


def _features(images: Sequence[Tensor],
              xy_std: float,
              rgb_std: float = None) -> Tuple[Tensor, Tensor]:
    """(sum N_i, 2 or 5) features of the images' pixels (row-major, as the
    code) and their (sum N_i, ) image index."""
    feats, groups = [], []
    for idx, image in enumerate(images):
        H, W = image.shape[:2]
        dev = image.device
        # x / sxy and y / sxy in float32, as the code's ``i / sx``.
        xs = torch.arange(W, device=dev, dtype=torch.float32) / xy_std
        ys = torch.arange(H, device=dev, dtype=torch.float32) / xy_std
        pos = torch.stack([xs[None, :].expand(H, W), ys[:, None].expand(H, W)],
                          dim=-1)
        parts = [pos.reshape(H * W, 2)]
        if rgb_std is not None:
            parts.append(image.reshape(H * W, 3).float() / rgb_std)
        feats.append(torch.cat(parts, dim=1))
        groups.append(
            torch.full((H * W, ), idx, dtype=torch.int64, device=dev))
    return torch.cat(feats), torch.cat(groups)


class _Kernel:
    """One Potts pairwise term: lattice, symmetric normalisation, weight."""

    def __init__(self, features: Tensor, groups: Tensor,
                 weight: float) -> None:
        self.lattice = PermutohedralLattice(features, groups)
        ones = features.new_ones(features.shape[0], 1)
        self.norm = 1.0 / torch.sqrt(self.lattice.filter(ones) + 1e-20)
        self.weight = weight

    def message(self, q: Tensor) -> Tensor:
        """``w * n * filter(n * Q)`` (the code's ``-tmp2``)."""
        return self.weight * self.norm * self.lattice.filter(self.norm * q)


class TorchDenseCRF:
    """A batch of dense CRFs with :class:`DenseCRF`'s parameters.

    Args:
        params (dict): ``iters, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std,
            bi_w`` (:attr:`DenseCRF.params`).
        device (str | torch.device): Where to run. Defaults to 'cpu'.
    """

    def __init__(self,
                 params: dict,
                 device: Union[str, torch.device] = 'cpu') -> None:
        self.params = dict(params)
        self.device = torch.device(device)

    def __call__(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """One image, as :meth:`DenseCRF.__call__` (a batch of one)."""
        return self.refine([image], [probs])[0]

    def label(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """One image's argmax, as :meth:`DenseCRF.label`."""
        out = self(image, probs)
        return out.argmax(
            axis=0).astype(np.uint8 if out.shape[0] <= 256 else np.int64)

    @torch.no_grad()
    def refine(self, images: Sequence[np.ndarray],
               probs: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Refine a batch (images may differ in size).

        Args:
            images (Sequence[ndarray]): (H, W, 3) uint8 RGB images.
            probs (Sequence[ndarray]): (C, H, W) float class probabilities
                (the code's ``unary_from_softmax`` input; not renormalised).

        Returns:
            list[ndarray]: (C, H, W) float32 refined probabilities.
        """
        if not len(images):
            return []
        p = self.params
        imgs = [
            torch.from_numpy(np.ascontiguousarray(i)).to(self.device)
            for i in images
        ]
        unary = []
        for prob in probs:
            prob = torch.from_numpy(np.asarray(prob,
                                               np.float32)).to(self.device)
            C = prob.shape[0]
            u = -torch.log(prob.clamp(_PROB_CLIP, 1.0))
            unary.append(u.reshape(C, -1).T)  # (N_i, C)
        sizes = [u.shape[0] for u in unary]
        num_classes = {u.shape[1] for u in unary}
        if len(num_classes) != 1:
            raise ValueError('TorchDenseCRF.refine: every image of a batch '
                             f'needs the same class count, got {num_classes}')
        unary = torch.cat(unary)  # (sum N_i, C)
        gauss = _Kernel(*_features(imgs, float(p['pos_xy_std'])),
                        float(p['pos_w']))
        bilateral = _Kernel(
            *_features(imgs, float(p['bi_xy_std']), float(p['bi_rgb_std'])),
            float(p['bi_w']))
        q = torch.softmax(-unary, dim=1)
        for _ in range(int(p['iters'])):
            q = torch.softmax(
                -unary + gauss.message(q) + bilateral.message(q), dim=1)
        out = []
        for (H, W), chunk in zip((i.shape[:2] for i in imgs),
                                 torch.split(q, sizes)):
            out.append(chunk.T.reshape(-1, H, W).float().cpu().numpy())
        return out
