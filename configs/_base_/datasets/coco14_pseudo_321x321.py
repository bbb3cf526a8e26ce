# Second stage on MS COCO 2014 objects (80 classes + background, VOC layout,
# tools/dataset_converters/coco14.py): train (82,081) on PSEUDO labels
# (`PseudoLabelDataset`, see voc12aug_pseudo_321x321.py), validation on the
# real val masks (40,137). DeepLab-v2's rescale (deeplab-pytorch): U(0.5,
# 1.5) of the image (COCO's long side is 640), 321 crop, flip.
dataset_type = 'WSSSCOCODataset'
data_root = 'data/coco2014/voc_layout'
# Override with --cfg-options train_dataloader.dataset.pseudo_label_dir=DIR
# (tools/second_stage.sh does).
pseudo_label_dir = 'work_dirs/pseudo_labels/coco14'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # the pseudo label
    dict(
        type='RandomResize',
        scale=(640, 640),
        ratio_range=(0.5, 1.5),
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
    batch_size=5,
    num_workers=4,
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
