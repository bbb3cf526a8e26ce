# PASCAL VOC 2012 + SBD with AGEN's training augmentation: "randomly resized
# within the range of [321, 481] and then cropped to 321 x 321" (read as the
# longer side drawn uniformly from [321, 481], the aspect kept; crops of
# smaller images are padded, the valid box kept), horizontal flip (the paper
# names none; every method it compares to flips), batch 15.
_base_ = './voc12aug_448x448.py'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResize',
        scale=(481, 481),
        ratio_range=(321 / 481, 1.0),
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithBox', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(batch_size=15, dataset=dict(pipeline=train_pipeline))
