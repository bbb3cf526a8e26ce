# Copyright (c) OpenMMLab. All rights reserved.
"""FSR's uncertainty-guided (block) masking of patch tokens."""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from .schedule import current_iter

_ROUNDINGS = ('ceil', 'floor')
# Defaults of the two forms (explicit arguments override them).
MASKING_FORMS = dict(
    # FSR code (utils/masking.py, train_voc.py): 64 px blocks = 4x4
    # patches, ceil(49 * 0.4) = 20 of the 7x7 blocks at 448 px, random
    # masking while (n_iter + 1) <= max_iters // 5 (VOC: 4,000).
    code=dict(block_size=4, rounding='ceil', random_iters=4000),
    # Paper Eq. 2-4: token level, k = floor(HW * r), no random phase.
    paper=dict(block_size=1, rounding='floor', random_iters=0))


class UncertaintyMasking:
    """Mask patch tokens, uncertain CAM regions first (FSR, AAAI 2024).

    With the token grid cut into ``block_size x block_size`` blocks
    (``n`` blocks) and ``k = ceil(n * r)`` ('ceil') or ``floor(n * r)``
    ('floor'):

    1. ``u ~ U(0, 1)`` per block.
    2. From iteration ``random_iters`` on (before it: random masking),
       ``v = max_c(cam_c * label_c)`` at pixel resolution is turned into
       ``roi = low_thr < v < high_thr``, sampled at each block's top-left
       pixel (the code's nearest ``F.interpolate`` to the block grid, see
       :meth:`uncertain_blocks`), and ``u += 1`` on uncertain blocks.
    3. The ``k`` blocks with the largest ``u`` are masked: uncertain blocks
       first, in random order; when fewer than ``k`` are uncertain, random
       confident blocks fill up (paper Eq. 3-4).

    ``form='code'`` (default): 4x4-patch blocks (64 px, a 7x7 grid at 448
    px), 'ceil' (20 of 49 blocks at r = 0.4), random for the first
    ``random_iters = max_iters // 5`` iterations, the student's multi-scale
    **aux** CAM of the masked view as ``cam`` (official_code_notes 3).
    ``form='paper'``: single tokens (``block_size=1``), 'floor', no random
    phase; the paper's CAM ``M_c`` is the min-max normalised
    ``ReLU(Z_1 W^T)`` of the *first* (unmasked) view at token resolution
    (pass such a CAM, or a pixel CAM, read at each token's top-left
    pixel). Which view's CAM is passed is the caller's choice: the code
    uses the masked view's, the paper the other view's.

    Blocks that do not fit a grid that is not a multiple of ``block_size``
    are cut at the bottom/right edge (the code requires a multiple); they
    count as whole blocks.

    Args:
        form (str): 'code' or 'paper': the defaults of ``block_size``,
            ``rounding`` and ``random_iters`` (see ``MASKING_FORMS``).
            Defaults to 'code'.
        mask_ratio (float): ``r``. Defaults to 0.4.
        low_thr (float): ``beta_l``. Defaults to 0.2.
        high_thr (float): ``beta_h``. Defaults to 0.7.
        block_size (int, optional): Block side in patches.
        rounding (str, optional): 'ceil' or 'floor'.
        random_iters (int, optional): Iterations of random masking (FSR:
            ``max_iters // 5``; COCO 16,000).
    """

    def __init__(self,
                 form: str = 'code',
                 mask_ratio: float = 0.4,
                 low_thr: float = 0.2,
                 high_thr: float = 0.7,
                 block_size: Optional[int] = None,
                 rounding: Optional[str] = None,
                 random_iters: Optional[int] = None) -> None:
        if form not in MASKING_FORMS:
            raise ValueError(f'form must be one of {list(MASKING_FORMS)}, '
                             f'got {form!r}')
        preset = MASKING_FORMS[form]
        self.form = form
        self.block_size = preset['block_size'] \
            if block_size is None else int(block_size)
        self.rounding = preset['rounding'] if rounding is None else rounding
        self.random_iters = preset['random_iters'] \
            if random_iters is None else int(random_iters)
        if self.rounding not in _ROUNDINGS:
            raise ValueError(f'rounding must be one of {_ROUNDINGS}, got '
                             f'{self.rounding!r}')
        if self.block_size < 1:
            raise ValueError(f'block_size must be >= 1, got {block_size}')
        if not 0. <= mask_ratio <= 1.:
            raise ValueError(f'mask_ratio must be in [0, 1], got '
                             f'{mask_ratio}')
        self.mask_ratio = mask_ratio
        self.low_thr = low_thr
        self.high_thr = high_thr

    def block_grid(self, token_grid: Tuple[int, int]) -> Tuple[int, int]:
        """Blocks per column and row of a ``(h, w)`` token grid."""
        h, w = token_grid
        return -(-h // self.block_size), -(-w // self.block_size)

    def num_masked_blocks(self, num_blocks: int) -> int:
        """``k`` for ``num_blocks`` blocks (the code's
        ``int(np.ceil(n * r))``)."""
        k = num_blocks * self.mask_ratio
        return int(math.ceil(k) if self.rounding == 'ceil' else math.floor(k))

    def is_random(self, iteration: Optional[int] = None) -> bool:
        """Whether ``iteration`` (default: current) masks at random."""
        it = current_iter() if iteration is None else iteration
        return it < self.random_iters

    def uncertain_blocks(self,
                         cam: Tensor,
                         token_grid: Tuple[int, int],
                         cls_label: Optional[Tensor] = None) -> Tensor:
        """Blocks whose CAM value at their top-left pixel is uncertain.

        Block ``(i, j)`` reads the pixel ``(i * s * H // h, j * s * W //
        w)`` of the ``H x W`` CAM (``s = block_size``): for a grid that is
        a multiple of ``s`` this is exactly the code's nearest
        ``F.interpolate`` to the block grid (the top-left pixel of each
        64 px block at 448 px), and it stays aligned with the blocks when
        the grid is not a multiple, or the CAM is at token resolution.

        Args:
            cam (Tensor): (B, C, H, W) foreground CAMs in [0, 1].
            token_grid (tuple[int, int]): (h, w) token grid.
            cls_label (Tensor, optional): (B, C) multi-hot labels.

        Returns:
            Tensor: (B, gh * gw) bool.
        """
        if cls_label is not None:
            cam = cam * cls_label[:, :, None, None].to(cam.dtype)
        value = cam.max(dim=1).values  # (B, H, W)
        H, W = value.shape[-2:]
        (h, w), s = token_grid, self.block_size
        gh, gw = self.block_grid(token_grid)
        rows = torch.arange(gh, device=value.device) * s * H // h
        cols = torch.arange(gw, device=value.device) * s * W // w
        sampled = value[:, rows][:, :, cols]  # (B, gh, gw)
        roi = (sampled > self.low_thr) & (sampled < self.high_thr)
        return roi.flatten(1)

    def __call__(self,
                 cam: Optional[Tensor],
                 token_grid: Tuple[int, int],
                 cls_label: Optional[Tensor] = None,
                 iteration: Optional[int] = None,
                 generator: Optional[torch.Generator] = None,
                 batch_size: Optional[int] = None) -> Tensor:
        """Draw the masks of a batch.

        Args:
            cam (Tensor, optional): (B, C, H, W) normalised foreground CAMs
                (any resolution). Only read after the random phase; may be
                None then, with ``batch_size`` given.
            token_grid (tuple[int, int]): (h, w) patch-token grid of the
                masked view (448 px / 16 = (28, 28)).
            cls_label (Tensor, optional): (B, C) multi-hot labels (the code
                masks absent classes' CAMs).
            iteration (int, optional): Default ``current_iter()``.
            generator (torch.Generator, optional): Generator of the noise
                (its device is used); default: the global RNG on the CAM's
                device.
            batch_size (int, optional): B when ``cam`` is None.

        Returns:
            Tensor: (B, h * w) bool, True at masked tokens (raster order,
            as the backbone's ``mask`` argument).
        """
        random_phase = self.is_random(iteration)
        if cam is None:
            if not random_phase:
                raise ValueError('a CAM is needed after the random phase '
                                 f'(iteration >= {self.random_iters})')
            if batch_size is None:
                raise ValueError('batch_size is needed without a CAM')
            B, device = batch_size, None
        else:
            B, device = cam.shape[0], cam.device
        h, w = token_grid
        gh, gw = self.block_grid(token_grid)
        n = gh * gw
        noise_device = generator.device if generator is not None else device
        noise = torch.rand(B, n, generator=generator, device=noise_device)
        if not random_phase:
            uncertain = self.uncertain_blocks(cam, token_grid, cls_label)
            noise = noise + uncertain.to(noise.device, noise.dtype)
        k = self.num_masked_blocks(n)
        blocks = torch.zeros(B, n, dtype=torch.bool, device=noise.device)
        if k > 0:
            blocks.scatter_(1, noise.topk(k, dim=1).indices, True)
        mask = blocks.reshape(B, gh, gw)
        s = self.block_size
        mask = mask.repeat_interleave(s, dim=1).repeat_interleave(s, dim=2)
        mask = mask[:, :h, :w].reshape(B, h * w)
        return mask if device is None else mask.to(device)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(form={self.form!r}, '
                f'mask_ratio={self.mask_ratio}, low_thr={self.low_thr}, '
                f'high_thr={self.high_thr}, block_size={self.block_size}, '
                f'rounding={self.rounding!r}, '
                f'random_iters={self.random_iters})')
