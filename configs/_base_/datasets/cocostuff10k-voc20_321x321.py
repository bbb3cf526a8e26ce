# COCO-Stuff 10K restricted to the 20 PASCAL VOC classes (ASDT, TIP 2023,
# Table 2, "following EDAM"): every other class is background, unlabelled
# pixels are ignored (255). Train on imageLists/train.txt (9,000), evaluate
# on imageLists/test.txt (1,000, here val.txt = test.txt). Prepare with
# tools/dataset_converters/cocostuff10k.py (docs/datasets.md).
# Training pipeline as RRM's / ASDT's on VOC (voc12aug_rrm-321x321.py): a
# random rescale U(0.7, 1.3) of the image's own size, horizontal flip, a
# 321 x 321 crop with padding (the valid box kept for the energy loss),
# batch 4.
# Images without any VOC class (kept by the converter, with an empty label
# list) are dropped when the datasets are built (empty_label_policy='skip',
# the count is logged): a WSSS sample needs a positive class. The
# evaluation then covers the test images with at least one VOC class; to
# score all 1,000, set the test dataset's cls_label_file=None (for
# predictions that read no image label: RRM's / ASDT's segmentation output,
# CAMs with test_cfg.cls_source='pred').
dataset_type = 'WSSSVOCDataset'
data_root = 'data/cocostuff10k_voc20'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # Ratio U(0.7, 1.3) of the image's own size, PIL bilinear (not mmcv's
    # RandomResize, whose ratio is of a fixed scale).
    dict(type='RandomRescale', ratio_range=(0.7, 1.3)),
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
    batch_size=4,
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
        empty_label_policy='skip',  # images without a VOC class
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
        empty_label_policy='skip',  # images without a VOC class
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='WSSSIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
