# Copyright (c) OpenMMLab. All rights reserved.
from torch import Tensor


def denormalize_images(inputs: Tensor, data_preprocessor) -> Tensor:
    """Normalised network inputs back to RGB in [0, 1].

    PAR, the energy loss and DuPL's strong view work on the image, not on the
    network input; ``SegDataPreProcessor`` has already converted BGR to RGB
    and normalised with its ``mean``/``std`` (0-255 units).

    Args:
        inputs (Tensor): (B, 3, H, W) normalised images.
        data_preprocessor: The segmentor's ``SegDataPreProcessor``.

    Returns:
        Tensor: (B, 3, H, W) RGB in [0, 1].
    """
    pre = data_preprocessor
    return ((inputs * pre.std + pre.mean) / 255.).clamp(0, 1)
