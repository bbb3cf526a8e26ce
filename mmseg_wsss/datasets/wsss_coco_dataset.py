# Copyright (c) OpenMMLab. All rights reserved.
from mmseg_wsss.registry import DATASETS
from .cls_labels import default_palette
from .metainfo import COCO14_CLASSES
from .wsss_base_dataset import WSSSBaseDataset


@DATASETS.register_module()
class WSSSCOCODataset(WSSSBaseDataset):
    """MS COCO 2014 objects (80 classes + background) in VOC layout.

    Splits: ``train`` 82,081 and ``val`` 40,137 images (those with at least
    one object). Prepare it with ``tools/dataset_converters/coco14.py``,
    which writes the masks (crowd regions 255) and ``cls_labels.json``.
    """
    METAINFO = dict(
        classes=COCO14_CLASSES, palette=default_palette(len(COCO14_CLASSES)))
