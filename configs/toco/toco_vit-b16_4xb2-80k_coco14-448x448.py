# ToCo complete on COCO (CTC with temperature 1.0, on with PTC after the
# 12k-iteration stages; official_code_notes 1.6 and 1.8). Base: the CTC-free
# COCO config.
_base_ = './toco-noctc_vit-b16_4xb2-80k_coco14-448x448.py'
crop_size = (448, 448)
model = dict(
    network=dict(proj_head=dict(type='DINOHead', in_dim=768, out_dim=1024)),
    loss_ctc=dict(
        type='ClassTokenContrastLoss', temperature=1.0, loss_weight=0.5),
    # `n_iter <= 12000`: no PTC and no CTC (gate_rule 'after').
    train_cfg=dict(ctc=dict(start_iter=12000, local_crop_size=96)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
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
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'proj_head': dict(lr_mult=10.)}))
