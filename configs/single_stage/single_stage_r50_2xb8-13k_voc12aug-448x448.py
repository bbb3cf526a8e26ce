# 1Stage on ResNet-50 as the code's voc_resnet50.yaml: torchvision weights,
# no dilation (the deep features at stride 32; ASPP keeps the stride-8 rates),
# layer1 (256 channels, stride 4) as the skip, every BN and conv1/bn1 frozen;
# crop 448, LR 5e-4 with multipliers 1 / 1 / 10 / 10, 20 epochs (pretraining
# 5), test scales (1, 0.75, 1.25, 1.5) on a 768 x 768 canvas, class cut 0.3.
# The yaml also sets USE_GT_LABELS: True (ground-truth image labels at test
# time); here cls_source stays 'pred' (a fair evaluation).
_base_ = './single_stage_wr38_2xb8-16k_voc12aug-321x321.py'
crop_size = (448, 448)
max_iters = 13220  # 20 epochs x 661
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
    dict(
        type='ToCoPhotometricAug',
        jitter=(0.3, 0.3, 0.3, 0.1),
        jitter_prob=1.0,
        gray_prob=0.0,
        blur_prob=0.0),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 3),
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        style='pytorch',
        frozen_stages=0,  # conv1 / bn1
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(in_channels=(256, 2048)),
    test_cfg=dict(
        scales=(1.0, 0.75, 1.25, 1.5), fp_cut=0.3, pad_size=(768, 768)))
optim_wrapper = dict(
    optimizer=dict(lr=5e-4),
    paramwise_cfg=dict(lr_mult=(1., 1., 10., 10.)))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
