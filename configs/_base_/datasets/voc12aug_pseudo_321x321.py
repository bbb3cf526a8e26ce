# Second stage on PASCAL VOC 2012 + SBD: train_aug (10,582) on PSEUDO labels
# (`PseudoLabelDataset`: one class-index PNG per image in pseudo_label_dir,
# made by tools/make_pseudo_labels.py; checked when the dataset is built),
# validation on the real val masks (1,449), as every WSSS config here.
# mmseg's training pipeline; the rescale is DeepLab-v2's (deeplab-pytorch):
# U(0.5, 1.5) of the image (VOC's long side is 500), 321 crop, flip. The
# crop is padded to 321 by the data preprocessor (label 255).
dataset_type = 'WSSSVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
# Override with --cfg-options train_dataloader.dataset.pseudo_label_dir=DIR
# (tools/second_stage.sh does).
pseudo_label_dir = 'work_dirs/pseudo_labels/voc12aug'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # the pseudo label
    dict(
        type='RandomResize',
        scale=(500, 500),
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
                img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
            ann_file='ImageSets/Segmentation/train_aug.txt',
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
