# Copyright (c) OpenMMLab. All rights reserved.
from mmseg_wsss.registry import DATASETS
from .cls_labels import default_palette
from .metainfo import VOC_CLASSES
from .wsss_base_dataset import WSSSBaseDataset


@DATASETS.register_module()
class WSSSVOCDataset(WSSSBaseDataset):
    """PASCAL VOC 2012 (+ SBD ``train_aug``) with image-level labels.

    Splits: ``train_aug`` 10,582 images (masks in ``SegmentationClassAug``),
    ``train`` 1,464 and ``val`` 1,449 (``SegmentationClass``). Prepare it with
    ``tools/dataset_converters/voc_aug.py``, which also writes
    ``cls_labels.json``; ToCo's ``cls_labels_onehot.npy`` is accepted too.
    """
    METAINFO = dict(
        classes=VOC_CLASSES, palette=default_palette(len(VOC_CLASSES)))
