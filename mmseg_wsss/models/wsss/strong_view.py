# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's strongly perturbed view ("every pixel matters", paper Eq. 8).

official_code_notes 2: per image, RandAugment with ``n = 5`` colour ops
drawn with replacement from {AutoContrast, Equalize, Posterize, Color,
Contrast, Brightness, Sharpness} at magnitude ``m = 10`` (value
``m / 30 * (max - min) + min``: enhance factor 0.7 on the 0.1-1.9 range,
2 posterize bits on the 0-6 range), then ImageNet normalisation, an
unconditional horizontal flip and a x0.75 bilinear downscale. The
segmentation logits of the view are flipped back and upsampled to the weak
view's size to be compared pixel by pixel.

The official code applies the ops with PIL on the CPU; here they are the
``torchvision.transforms.v2.functional`` uint8 tensor kernels, on the
images' device, with uint8 rounding between ops as PIL has. Against Pillow's
``ImageOps``/``ImageEnhance`` at m = 10 on synthetic natural-like uint8
images (torchvision 0.29, Pillow 13; tests/test_models/test_utils/
test_strong_view.py):

- Equalize, Posterize, Brightness, Sharpness: bit-exact;
- AutoContrast: at most 1 level apart on ~2-5 % of the values (PIL builds
  its LUT as ``int(v * scale + offset)`` in double, torchvision divides by
  the float32 inverse scale; both truncate);
- Color: at most 1 level apart on ~16 % of the values (torchvision floors
  the float grey level of ``adjust_saturation``, PIL rounds its fixed-point
  ITU-R 601-2 luma);
- Contrast: at most 1 level apart on ~30 % of the values (torchvision
  blends towards the float mean grey level, PIL towards that mean rounded
  to an integer).

None changes what an op does. Down a chain of five ops the single-op
differences can grow: AutoContrast and Equalize stretch them, Posterize
(4 levels of 64) can move a value across a bin edge. Measured over 12
random chains, the mean difference from the PIL chain is 0-3.8 levels
(median 0.4), on a few pixels up to one posterize bin or more; a drift
far below the perturbation itself.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from ..utils.resize import resize

# RandAugment ops of DuPL with their (min, max) magnitude range; None: the
# op takes no magnitude.
STRONG_OPS = {
    'AutoContrast': None,
    'Equalize': None,
    'Posterize': (0, 6),
    'Color': (0.1, 1.9),
    'Contrast': (0.1, 1.9),
    'Brightness': (0.1, 1.9),
    'Sharpness': (0.1, 1.9),
}
OpValue = Optional[Union[int, float]]


def _apply_op(name: str, img: Tensor, value: OpValue) -> Tensor:
    """One RandAugment op on a (B, 3, H, W) uint8 batch."""
    if name == 'AutoContrast':
        return TF.autocontrast(img)
    if name == 'Equalize':
        return TF.equalize(img)
    if name == 'Posterize':
        return TF.posterize(img, int(value))
    if name == 'Color':  # PIL's ImageEnhance.Color is a saturation blend
        return TF.adjust_saturation(img, value)
    if name == 'Contrast':
        return TF.adjust_contrast(img, value)
    if name == 'Brightness':
        return TF.adjust_brightness(img, value)
    if name == 'Sharpness':
        return TF.adjust_sharpness(img, value)
    raise KeyError(f'unknown op {name!r}')


class StrongView:
    """DuPL's strong view of a batch and its inverse for dense outputs.

    ``view = downscale(flip(normalise(RandAugment(img))))`` with per-image
    ops; :meth:`invert` maps the view's dense predictions back onto the
    input grid: ``upsample(flip(pred))``. With ``scale=1`` the round trip is
    exact; otherwise only the bilinear resampling loses detail.

    The class has no parameters; it can run on any device. Randomness (the
    op draw only) comes from ``generator``, else from the instance's own
    generator when ``seed`` is given, else from torch's global CPU RNG.

    Args:
        num_ops (int): Ops per image, drawn with replacement. Defaults to 5.
        magnitude (float): RandAugment magnitude m (of 30). Defaults to 10.
        scale (float): Downscale factor of the view. Defaults to 0.75.
        mean (Sequence[float]): Normalisation mean, 0-255 RGB. Defaults to
            ImageNet's.
        std (Sequence[float]): Normalisation std, 0-255 RGB. Defaults to
            ImageNet's.
        flip (bool): Flip horizontally (always, as DuPL). Defaults to True.
        ops (Sequence[str]): Op pool, names of :data:`STRONG_OPS`.
            Defaults to all seven.
        seed (int, optional): Seeds an own CPU generator. Defaults to None.
    """

    def __init__(self,
                 num_ops: int = 5,
                 magnitude: float = 10,
                 scale: float = 0.75,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 flip: bool = True,
                 ops: Sequence[str] = tuple(STRONG_OPS),
                 seed: Optional[int] = None) -> None:
        unknown = [op for op in ops if op not in STRONG_OPS]
        if unknown or not ops:
            raise ValueError(f'ops must be a non-empty subset of '
                             f'{tuple(STRONG_OPS)}, got {tuple(ops)}')
        if int(num_ops) < 0:
            raise ValueError(f'num_ops must be >= 0, got {num_ops}')
        if not scale > 0:
            raise ValueError(f'scale must be > 0, got {scale}')
        if len(mean) != 3 or len(std) != 3:
            raise ValueError('mean and std need 3 (RGB) values')
        self.num_ops = int(num_ops)
        self.magnitude = float(magnitude)
        self.scale = float(scale)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.flip = bool(flip)
        self.ops = tuple(ops)
        self.values = tuple(self.op_value(op) for op in self.ops)
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(int(seed))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_ops={self.num_ops}, '
                f'magnitude={self.magnitude}, scale={self.scale}, '
                f'flip={self.flip}, ops={self.ops})')

    def op_value(self, op: str) -> OpValue:
        """The op's value at ``self.magnitude``: ``m / 30 * (max - min) +
        min``; posterize bits are truncated to an int (at least 1)."""
        rng = STRONG_OPS[op]
        if rng is None:
            return None
        value = self.magnitude / 30 * (rng[1] - rng[0]) + rng[0]
        if op == 'Posterize':
            return max(1, int(value))
        return value

    def output_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """(h, w) of the view of an (H, W) input: ``round(scale * H)``."""
        return (int(round(size[0] * self.scale)),
                int(round(size[1] * self.scale)))

    def sample_ops(self,
                   batch_size: int,
                   generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw the ops of each image, with replacement.

        Args:
            batch_size (int): B.
            generator (torch.Generator, optional): CPU generator.

        Returns:
            Tensor: (B, num_ops) long indices into ``self.ops`` (CPU).
        """
        generator = generator if generator is not None else self.generator
        return torch.randint(
            len(self.ops), (batch_size, self.num_ops), generator=generator)

    def augment(self, img: Tensor, op_idx: Tensor) -> Tensor:
        """Apply the drawn ops, in order, to each image.

        Args:
            img (Tensor): (B, 3, H, W) RGB images in [0, 255], float (rounded
                to the nearest level, as the denormalised batch was uint8) or
                uint8.
            op_idx (Tensor): (B, num_ops) indices into ``self.ops``.

        Returns:
            Tensor: (B, 3, H, W) uint8 augmented images.
        """
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError(
                f'img must be (B, 3, H, W), got {tuple(img.shape)}')
        if op_idx.shape[0] != img.shape[0]:
            raise ValueError(f'op_idx has {op_idx.shape[0]} rows for a '
                             f'batch of {img.shape[0]}')
        if img.is_floating_point():
            img = img.detach().round().clamp_(0, 255).to(torch.uint8)
        else:
            img = img.to(torch.uint8, copy=True)
        op_idx = op_idx.cpu()
        for step in op_idx.t():  # (B, ) ops of one step
            # One batched call per distinct op of this step.
            for k in step.unique().tolist():
                sel = (step == k).nonzero().squeeze(1).to(img.device)
                out = _apply_op(self.ops[k], img.index_select(0, sel),
                                self.values[k])
                img.index_copy_(0, sel, out)
        return img

    def __call__(self,
                 img: Tensor,
                 generator: Optional[torch.Generator] = None) -> Tensor:
        """Build the network input of the strong view.

        Args:
            img (Tensor): (B, 3, H, W) denormalised RGB images in [0, 255].
            generator (torch.Generator, optional): CPU generator of the op
                draw. Defaults to None (see the class docstring).

        Returns:
            Tensor: (B, 3, round(scale * H), round(scale * W)) normalised,
            flipped and resized view (float32, or ``img``'s float dtype).
        """
        dtype = img.dtype if img.is_floating_point() else torch.float32
        op_idx = self.sample_ops(img.shape[0], generator)
        x = self.augment(img, op_idx).to(dtype)
        mean = x.new_tensor(self.mean).view(1, 3, 1, 1)
        std = x.new_tensor(self.std).view(1, 3, 1, 1)
        return self.warp((x - mean) / std)

    def warp(self, x: Tensor, mode: str = 'bilinear') -> Tensor:
        """The view's geometric part alone: flip, then resize.

        Args:
            x (Tensor): (B, C, H, W) dense map (images, probabilities, or
                integer labels with ``mode='nearest'``).
            mode (str): ``'bilinear'`` (align_corners=False) or
                ``'nearest'``. Defaults to ``'bilinear'``.

        Returns:
            Tensor: (B, C, round(scale * H), round(scale * W)).
        """
        if self.flip:
            x = x.flip(-1)
        return resize(x, self.output_size(x.shape[-2:]), mode)

    def invert(self, logits: Tensor, size: Tuple[int, int]) -> Tensor:
        """Map dense predictions of the view back onto the input grid.

        As DuPL: flip back, then bilinear upsampling (align_corners=False).

        Args:
            logits (Tensor): (B, C, h, w) outputs of the view (any
                resolution).
            size (tuple[int]): (H, W) of the original input.

        Returns:
            Tensor: (B, C, H, W) logits aligned with the input.
        """
        if self.flip:
            logits = logits.flip(-1)
        return resize(logits, tuple(size))
