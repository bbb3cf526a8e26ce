# MS COCO 2014 objects (80 classes + background) in VOC layout: train 82,081,
# val 40,137. Prepare with tools/dataset_converters/coco14.py
# (docs/datasets.md).
dataset_type = 'WSSSCOCODataset'
data_root = 'data/coco2014/voc_layout'
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
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
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
