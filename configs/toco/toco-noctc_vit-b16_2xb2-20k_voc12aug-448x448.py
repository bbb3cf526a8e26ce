_base_ = [
    '../_base_/models/toco_vit-b16.py',
    '../_base_/datasets/voc12aug_448x448.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toco_20k.py'
]
crop_size = (448, 448)
# ToCo's recipe (official_code_notes 1.1): rescale 0.5-2.0, flip, 448 crop
# with zero padding and the valid box, jitter (p 0.8), grey (p 0.2), blur
# (p 1.0).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # The code's rescale: U(0.5, 2.0) of the image's own size, PIL bilinear.
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithBox', crop_size=crop_size),
    dict(type='ToCoPhotometricAug'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# Total batch 4 (2 GPUs x 2), as the code ran: tools/dist_train.sh CONFIG 2
auto_scale_lr = dict(enable=False, base_batch_size=4)
