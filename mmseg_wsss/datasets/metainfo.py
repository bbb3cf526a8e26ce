# Copyright (c) OpenMMLab. All rights reserved.
"""Class names of the benchmark datasets (class 0 is always background)."""

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle',
               'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog',
               'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')

# COCO 2014 object classes in ascending COCO category-id order (ids 1..90
# with gaps map to 1..80 here), preceded by background.
COCO14_CATEGORY_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17,
                       18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34,
                       35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49,
                       50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
                       64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81,
                       82, 84, 85, 86, 87, 88, 89, 90)
COCO14_CLASSES = (
    'background', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus',
    'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')

assert len(COCO14_CLASSES) == 81 and len(COCO14_CATEGORY_IDS) == 80
