# The generated toy dataset (tools/generate_toy_dataset.py,
# docs/toy_dataset.md) in VOC layout; any VOC-layout folder with classes.txt
# works the same way: `tools/train.py CONFIG --data-root DIR` (the class
# count follows classes.txt).
dataset_type = 'WSSSCustomDataset'
data_root = 'data/toy'
crop_size = (96, 96)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCropWithBox', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackWSSSInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
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
    num_workers=2,
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
