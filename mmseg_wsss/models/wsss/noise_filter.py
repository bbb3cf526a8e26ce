# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's adaptive noise filtering (ANF) of segmentation pseudo labels.

Paper Eq. 6-7 and official_code_notes 2: the per-pixel losses of a branch's
prediction against its own refined pseudo label are modelled, per image, by
a two-component 1-D Gaussian mixture; foreground pixels that the
higher-mean ("noisy") component explains with posterior above ``gamma`` are
set to ignore, provided the two means are more than ``mean_gap`` apart. The
official code fits ``sklearn.mixture.GaussianMixture`` image by image on the
CPU (``backend='sklearn'``); ``backend='torch'`` fits the whole batch at once
on the tensors' device with :class:`GaussianMixture1D`.
"""
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

from .cam import IGNORE_INDEX
from .gaussian_mixture_1d import GaussianMixture1D

# DuPL's GaussianMixture arguments (official_code_notes 2).
DEFAULT_GMM_CFG = dict(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4)
BACKENDS = ('sklearn', 'torch')


def filter_noisy_labels(
        ce_map: Tensor,
        label: Tensor,
        *,
        ce_thr: float = 0.1,
        min_pixels: int = 1000,
        mean_gap: float = 1.0,
        gamma: float = 0.95,
        backend: str = 'sklearn',
        ignore_index: int = IGNORE_INDEX,
        gmm_cfg: Optional[dict] = None) -> Tuple[Tensor, Tensor]:
    """Set the foreground pixels of the high-loss mixture component to ignore.

    Per image b:

    1. foreground = ``label`` not in {0, ``ignore_index``};
    2. fit a Gaussian mixture to the foreground losses ``> ce_thr``, only if
       more than ``min_pixels`` of them qualify (else the image is kept);
    3. if ``max(mu) - min(mu) > mean_gap`` (``|mu0 - mu1|`` for two
       components), the foreground pixels, whatever their loss, whose
       posterior for the highest-mean component exceeds ``gamma`` become
       ``ignore_index``.

    Defaults are the official code's (``gamma`` 0.95; the paper states 0.9).
    Nothing here is differentiable: the losses are detached.

    Args:
        ce_map (Tensor): (B, H, W) per-pixel cross-entropy of a branch's
            prediction against ``label`` (``reduction='none'``).
        label (Tensor): (B, H, W) integer pseudo labels of the same branch.
        ce_thr (float): Only losses above it are fitted. Defaults to 0.1.
        min_pixels (int): An image is fitted only with more than this many
            qualifying pixels. Defaults to 1000.
        mean_gap (float): Minimum distance of the component means (paper
            eta). Defaults to 1.0.
        gamma (float): Posterior threshold of the noisy component.
            Defaults to 0.95.
        backend (str): ``'sklearn'``: the official per-image
            ``sklearn.mixture.GaussianMixture`` on CPU numpy (with
            ``random_state=0``); ``'torch'``: :class:`GaussianMixture1D`
            batched on the tensors' device. Defaults to ``'sklearn'``.
        ignore_index (int): The ignore label. Defaults to 255.
        gmm_cfg (dict, optional): Overrides of the mixture arguments
            (``n_components``, ``max_iter``, ``tol``, ``reg_covar``, plus
            the backend's own, e.g. ``random_state`` for scikit-learn).
            Defaults to None: DuPL's.

    Returns:
        tuple[Tensor]: The filtered copy of ``label`` (B, H, W) and the
        (B, H, W) bool mask of the pixels set to ``ignore_index``.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if ce_map.dim() != 3 or label.shape != ce_map.shape:
        raise ValueError('ce_map and label must both be (B, H, W), got '
                         f'{tuple(ce_map.shape)} and {tuple(label.shape)}')
    if label.is_floating_point():
        raise ValueError(f'label must be integer, got {label.dtype}')
    cfg = dict(DEFAULT_GMM_CFG)
    cfg.update(gmm_cfg or {})

    ce = ce_map.detach().flatten(1).float()
    fg = ((label != 0) & (label != ignore_index)).flatten(1)
    fitted = fg & (ce > ce_thr)
    run = fitted.sum(dim=1) > min_pixels
    noisy = torch.zeros_like(fg)
    if bool(run.any()):
        if backend == 'sklearn':
            noisy[run] = _noisy_sklearn(ce[run], fg[run], fitted[run],
                                        mean_gap, gamma, cfg)
        else:
            noisy[run] = _noisy_torch(ce[run], fg[run], fitted[run], mean_gap,
                                      gamma, cfg)
    noisy = noisy.view_as(label)
    out = label.clone()
    out[noisy] = ignore_index
    return out, noisy


def _noisy_torch(ce: Tensor, fg: Tensor, fitted: Tensor, mean_gap: float,
                 gamma: float, cfg: dict) -> Tensor:
    """Batched filter decision with :class:`GaussianMixture1D`.

    Args:
        ce (Tensor): (B, N) float losses.
        fg (Tensor): (B, N) bool foreground.
        fitted (Tensor): (B, N) bool, the values to fit.
        mean_gap (float): Minimum spread of the means.
        gamma (float): Posterior threshold.
        cfg (dict): :class:`GaussianMixture1D` arguments.

    Returns:
        Tensor: (B, N) bool noisy pixels.
    """
    gmm = GaussianMixture1D(**cfg).fit(ce, fitted)
    means = gmm.means_
    gap_ok = (means.amax(dim=1) - means.amin(dim=1)) > mean_gap
    noise_k = means.argmax(dim=1)
    post = gmm.predict_proba(ce)  # (B, N, K)
    idx = noise_k.view(-1, 1, 1).expand(-1, ce.shape[1], 1)
    post = post.gather(2, idx).squeeze(-1)
    return fg & (post > gamma) & gap_ok.unsqueeze(1)


def _noisy_sklearn(ce: Tensor, fg: Tensor, fitted: Tensor, mean_gap: float,
                   gamma: float, cfg: dict) -> Tensor:
    """Per-image filter decision with scikit-learn, as the official code.

    Same arguments and return as :func:`_noisy_torch`; ``cfg`` gets
    ``random_state=0`` unless it sets one.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    cfg = dict(cfg)
    cfg.setdefault('random_state', 0)
    ce_np = ce.cpu().numpy()  # float32, as F.cross_entropy returns
    fg_np = fg.cpu().numpy()
    fit_np = fitted.cpu().numpy()
    noisy = torch.zeros_like(fg, device='cpu')
    for b in range(ce_np.shape[0]):
        gmm = GaussianMixture(**cfg)
        # Non-convergence in max_iter=10 is expected, not worth a warning a
        # step (the official code does not act on it either).
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', ConvergenceWarning)
            gmm.fit(ce_np[b][fit_np[b]].reshape(-1, 1))
        means = gmm.means_.reshape(-1)
        if not means.max() - means.min() > mean_gap:
            continue
        vals = ce_np[b][fg_np[b]].reshape(-1, 1)
        post = gmm.predict_proba(vals)[:, int(means.argmax())]
        idx = torch.from_numpy(fg_np[b].nonzero()[0])
        noisy[b, idx[torch.from_numpy(post > gamma)]] = True
    return noisy.to(fg.device)
