# PASCAL VOC 2012 + SBD with 1Stage's training augmentation
# (official_code_notes 4): RandomResizedCrop to 321x321 over 90-100% of the
# image area (aspect 3/4-4/3, bicubic), horizontal flip, colour jitter
# (0.3, 0.3, 0.3, 0.1) always. No padding, so no valid box is needed.
_base_ = './voc12aug_448x448.py'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmpretrain.RandomResizedCrop',
        scale=crop_size,
        crop_ratio_range=(0.9, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        interpolation='bicubic',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    # torchvision's ColorJitter(0.3, 0.3, 0.3, 0.1) with p 1, nothing else.
    dict(
        type='ToCoPhotometricAug',
        jitter=(0.3, 0.3, 0.3, 0.1),
        jitter_prob=1.0,
        gray_prob=0.0,
        blur_prob=0.0),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
