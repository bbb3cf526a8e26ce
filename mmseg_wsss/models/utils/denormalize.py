# Copyright (c) OpenMMLab. All rights reserved.
from torch import Tensor


def denormalize_images(inputs: Tensor, data_preprocessor) -> Tensor:
    """Normalised network inputs back to RGB in [0, 1].

    PAR, the energy loss and DuPL's strong view work on the image, not on the
    network input; ``SegDataPreProcessor`` has already converted BGR to RGB
    and normalised with its ``mean``/``std`` (0-255 units).

    Difference from the authors' code: ToCo/DuPL's ``denormalize_img``
    (``utils/imutils.py``) casts ``x * std + mean`` to ``torch.uint8``, which
    truncates towards zero, before ``denormalize_img2`` divides by 255, so
    PAR sees ``floor(v) / 255``. This function keeps the float value
    ``v / 255``, clamped to [0, 1] (at most 1/255 above the code's value
    per pixel). DuPL's :class:`StrongView` rounds it to the nearest uint8
    level before its ops.

    Args:
        inputs (Tensor): (B, 3, H, W) normalised images.
        data_preprocessor: The segmentor's ``SegDataPreProcessor``.

    Returns:
        Tensor: (B, 3, H, W) RGB in [0, 1].
    """
    pre = data_preprocessor
    return ((inputs * pre.std + pre.mean) / 255.).clamp(0, 1)


def normalize_images(images: Tensor, data_preprocessor) -> Tensor:
    """Pipeline images to network inputs, as ``SegDataPreProcessor`` does.

    For the extra views a training pipeline packs beside the image
    (``data_sample.views``, see :class:`AddView`): the preprocessor only
    handles ``inputs``, so the model converts its views itself, with the
    same channel order and ``mean``/``std``.

    Args:
        images (Tensor): (B, 3, H, W) images as the pipeline packs them
            (uint8, BGR when ``bgr_to_rgb`` is set).
        data_preprocessor: The segmentor's ``SegDataPreProcessor``.

    Returns:
        Tensor: (B, 3, H, W) float32 normalised images.
    """
    pre = data_preprocessor
    x = images.float()
    if getattr(pre, 'channel_conversion', False):
        x = x[:, [2, 1, 0]]
    if getattr(pre, '_enable_normalize', True):
        x = (x - pre.mean) / pre.std
    return x
