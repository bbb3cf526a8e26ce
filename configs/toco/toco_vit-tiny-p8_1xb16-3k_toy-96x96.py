# ToCo complete (PTC + class-token contrast) on the toy dataset: the
# CTC-free toy config (toco-noctc_*, same start, batch, schedule and seed)
# plus CTC. Toy scaling (configs/toco/README.md): pixel-measured settings x
# 96/448: the second global view is a 96 px RandomResizedCrop, local crops
# are 24 px (96 x 96/448 = 20.6, rounded up to whole 8 px patches: 3x3
# tokens, ToCo's 96 px crops have 6x6), blur radii U(0.1, 2.0) x 96/448.
# The projector keeps ToCo's 256-d bottleneck and 1024-way output (they set
# the scale of the contrast's logits) with a 512-wide MLP for the 128-d toy
# tokens.
_base_ = './toco-noctc_vit-tiny-p8_1xb16-3k_toy-96x96.py'
crop_size = (96, 96)
blur_radius = (0.1 * 96 / 448, 2.0 * 96 / 448)
model = dict(
    network=dict(
        proj_head=dict(
            type='DINOHead',
            in_dim=128,
            out_dim=1024,
            hidden_dim=512,
            bottleneck_dim=256)),
    loss_ctc=dict(
        type='ClassTokenContrastLoss', temperature=0.5, loss_weight=0.5),
    train_cfg=dict(ctc=dict(start_iter=None, local_crop_size=24)))
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
            dict(
                type='ToCoPhotometricAug',
                blur_prob=0.1,
                blur_radius=blur_radius,
                solarize_prob=0.2)
        ]),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCropWithBox', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='AddView',
        transforms=[
            dict(type='RandomFlip', prob=0.5),
            dict(
                type='ToCoPhotometricAug',
                blur_prob=0.5,
                blur_radius=blur_radius)
        ]),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
