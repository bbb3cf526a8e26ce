# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import Optional

from mmseg_wsss.registry import DATASETS
from .cls_labels import default_palette, read_classes_file
from .wsss_base_dataset import WSSSBaseDataset


@DATASETS.register_module()
class WSSSCustomDataset(WSSSBaseDataset):
    """Any VOC-layout folder with the user's own classes.

    Layout::

        data_root/
            JPEGImages/*.jpg
            SegmentationClass/*.png       palette PNG, 255 = ignore
            ImageSets/Segmentation/{train,val}.txt
            classes.txt                   one name a line, background first
            cls_labels.json               optional: derived from the masks
                                          on first use if missing

    The class list comes from ``classes.txt`` unless ``metainfo`` gives
    ``classes``; the palette is the VOC colour map unless given.

    Args:
        classes_file (str): Class names file relative to ``data_root``.
            Defaults to 'classes.txt'.
        derive_cls_labels (bool): Derive a missing labels file from the
            masks once. Defaults to True.
        **kwargs: Arguments of :class:`WSSSBaseDataset`.
    """
    METAINFO: dict = dict()

    def __init__(self,
                 data_root: str = '',
                 classes_file: str = 'classes.txt',
                 metainfo: Optional[dict] = None,
                 derive_cls_labels: bool = True,
                 **kwargs) -> None:
        metainfo = dict(metainfo or {})
        if 'classes' not in metainfo:
            path = classes_file if osp.isabs(classes_file) else osp.join(
                data_root, classes_file)
            metainfo['classes'] = tuple(read_classes_file(path))
        metainfo.setdefault('palette',
                            default_palette(len(metainfo['classes'])))
        super().__init__(
            data_root=data_root,
            metainfo=metainfo,
            derive_cls_labels=derive_cls_labels,
            **kwargs)
