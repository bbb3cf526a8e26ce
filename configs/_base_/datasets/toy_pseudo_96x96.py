# Second stage on the toy dataset (toy_96x96.py): train on PSEUDO labels
# (`PseudoLabelDataset`: one class-index PNG per training image in
# pseudo_label_dir, from tools/make_pseudo_labels.py; checked when the
# dataset is built), validate on the real val masks. mmseg's pipeline at
# the toy scale: the toy CAM configs' rescale (96 x U(0.75, 1.5)), 96 crop,
# flip, photometric distortion.
dataset_type = 'WSSSCustomDataset'
data_root = 'data/toy'
# Override with --cfg-options train_dataloader.dataset.pseudo_label_dir=DIR
# (tools/second_stage.sh does); --data-root moves only the images.
pseudo_label_dir = 'work_dirs/pseudo_labels/toy'
crop_size = (96, 96)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # the pseudo label
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
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
        type='PseudoLabelDataset',
        pseudo_label_dir=pseudo_label_dir,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/train.txt',
            # The real masks are never read: the samples carry no mask
            # path until the wrapper sets the pseudo label's.
            with_seg_map=False,
            check_images=True,
            pipeline=train_pipeline)))
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
