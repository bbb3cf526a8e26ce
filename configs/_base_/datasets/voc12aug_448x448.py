# PASCAL VOC 2012 + SBD: train on train_aug (10,582), evaluate on val (1,449).
# Prepare with tools/dataset_converters/voc_aug.py (docs/datasets.md).
# Training pipeline as ToCo/DuPL (official_code_notes 1.1): random rescale
# 0.5-2.0, flip, 448 crop with zero padding and the valid box, colour jitter
# (p 0.8), greyscale (p 0.2) and Gaussian blur (p 1.0) are added by the
# methods that use them.
dataset_type = 'WSSSVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (448, 448)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # Ratio U(0.5, 2.0) of the image's own size, PIL bilinear, as the code
    # (not mmcv's RandomResize, whose ratio is of a fixed scale).
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithBox', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        with_seg_map=False,  # training never reads pixel labels
        # Decode every image when the dataset is built: a damaged file
        # stops the run before the first iteration, with all bad files
        # named, not hours later at the iteration that reads it.
        check_images=True,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='WSSSIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
