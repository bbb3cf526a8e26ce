# Copyright (c) OpenMMLab. All rights reserved.
from .cls_labels import (default_palette, labels_from_mask, load_cls_labels,
                         read_classes_file, save_cls_labels, to_multi_hot)
from .image_check import CorruptImageError, check_images, find_bad_images
from .metainfo import COCO14_CLASSES, VOC_CLASSES
from .pseudo_label_dataset import PseudoLabelDataset
from .transforms import *  # noqa: F401,F403
from .wsss_base_dataset import WSSSBaseDataset
from .wsss_coco_dataset import WSSSCOCODataset
from .wsss_custom_dataset import WSSSCustomDataset
from .wsss_voc_dataset import WSSSVOCDataset

__all__ = [
    'WSSSBaseDataset', 'WSSSCustomDataset', 'WSSSVOCDataset',
    'WSSSCOCODataset', 'PseudoLabelDataset', 'load_cls_labels',
    'save_cls_labels', 'labels_from_mask', 'to_multi_hot', 'read_classes_file',
    'default_palette', 'VOC_CLASSES', 'COCO14_CLASSES', 'check_images',
    'find_bad_images', 'CorruptImageError'
]
