# ToCo (CVPR 2023) complete, as the code ran it on VOC: PTC and the class
# token contrast (CTC, official_code_notes 1.6) on top of the CTC-free
# substrate (toco-noctc_*, which DuPL builds on). CTC adds a DINO projector
# (768 -> 2048 -> 2048 -> 256 -> weight-normed 1024, g frozen), its EMA
# teacher (m 0.9, updated before each forward), and two extra views of each
# training image: a second global view of the un-rescaled image and a
# jittered copy of the training crop that 8 local 96 px crops are cut from.
_base_ = './toco-noctc_vit-b16_2xb2-20k_voc12aug-448x448.py'
crop_size = (448, 448)
model = dict(
    network=dict(proj_head=dict(type='DINOHead', in_dim=768, out_dim=1024)),
    loss_ctc=dict(
        type='ClassTokenContrastLoss', temperature=0.5, loss_weight=0.5),
    train_cfg=dict(ctc=dict(start_iter=None, local_crop_size=96)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # View 1 of CTC: RandomResizedCrop(448, 0.4-1, bicubic) of the
    # un-rescaled image, flip, jitter (p 0.8), grey (p 0.2), blur (p 0.1),
    # solarize (p 0.2).
    dict(
        type='AddView',
        transforms=[
            dict(
                type='RandomResizedCrop',
                size=crop_size,
                scale=(0.4, 1.0),
                interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='ToCoPhotometricAug', blur_prob=0.1, solarize_prob=0.2)
        ]),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithBox', crop_size=crop_size),
    # The copy of the crop the local crops are cut from: its own flip (so,
    # as in the code, half of the crops come from mirrored positions),
    # jitter (p 0.8), grey (p 0.2), blur (p 0.5).
    dict(
        type='AddView',
        transforms=[
            dict(type='RandomFlip', prob=0.5),
            dict(type='ToCoPhotometricAug', blur_prob=0.5)
        ]),
    dict(type='ToCoPhotometricAug'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# The code's third parameter group: classifiers and the CTC head at lr x10.
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'proj_head': dict(lr_mult=10.)}))
