# Copyright (c) OpenMMLab. All rights reserved.
"""The parts of mmseg_wsss that need only numpy and Pillow (and OpenCV for
the toy generator), importable without torch/mmseg.

``mmseg_wsss/__init__.py`` imports torch and mmseg (registries, compat
checks), so anything under ``mmseg_wsss`` costs seconds to import. Code that
the light command-line tools share with the package lives here instead, in
its one home; ``mmseg_wsss`` imports it from here.

- :mod:`mmseg_wsss_light.voc_layout`: the VOC-layout helpers (colour
  palette, image-level labels from a mask, the ``cls_labels.json`` writer).
- :mod:`mmseg_wsss_light.fileio`: atomic text-file writes.
- :mod:`mmseg_wsss_light.toy_generator`: the toy WSSS dataset generator
  behind ``tools/generate_toy_dataset.py``.

Nothing in this package may import torch, mmengine, mmcv, mmseg or
``mmseg_wsss``.
"""
