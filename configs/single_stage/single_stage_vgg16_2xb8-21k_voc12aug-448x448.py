# 1Stage on the dilated VGG-16 of the code (voc_vgg16.yaml): conv3_3 skip
# (stride 4), fc7 deep features (1024 channels, stride 8), conv1_* frozen;
# its `vgg16_20M.pth` loads as is (same module names). Crop 448, LR 1e-3 with
# multipliers 1 / 2 / 10 / 20, 32 epochs (pretraining 5), test scales
# (1, 0.75, 1.25, 1.5), background power 1, class cut 0.3 (the yaml's
# USE_GT_LABELS: True is not followed: cls_source stays 'pred').
_base_ = './single_stage_r50_2xb8-13k_voc12aug-448x448.py'
max_iters = 21152  # 32 epochs x 661
model = dict(
    backbone=dict(
        _delete_=True,
        type='DilatedVGG16',
        out_indices=(0, 1),
        frozen_stages=1,
        init_cfg=dict(type='Pretrained',
                      checkpoint='pretrain/vgg16_20M.pth')),
    decode_head=dict(in_channels=(256, 1024)),
    test_cfg=dict(bg_pow=1.0))
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(lr_mult=(1., 2., 10., 20.)))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
