# SegFormer-B2 second stage: mmseg's segformer_mit-b2_8xb2-160k_ade20k
# (its model, AdamW 6e-5 with head LR x10 and no decay on norms and
# positional blocks, 1,500 linear warm-up iterations then poly 1.0, total
# batch 16 = 8 GPUs x 2, ImageNet-1k MiT-B2 init fetched by mmseg when
# training starts) built from mmseg's own base files, on the VOC train_aug
# PSEUDO labels (21 classes) for 20k iterations (mmseg's VOC length; ADE20K
# uses 160k), validated on the real val masks with the WSSS metric.
#   tools/dist_train.sh CONFIG 8
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/datasets/voc12aug_pseudo_512x512.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
crop_size = (512, 512)
num_classes = 21
max_iters = 20000
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b2_20220624-66e8bf70.pth'  # noqa
data_preprocessor = dict(size=crop_size)
model = dict(
    # mmseg's EncoderDecoder plus the WSSS test-time steps (--crf).
    type='WSSSEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint),
        embed_dims=64,
        num_heads=[1, 2, 5, 8],
        num_layers=[3, 4, 6, 3]),
    decode_head=dict(in_channels=[64, 128, 320, 512], num_classes=num_classes),
    test_cfg=dict(
        mode='whole',
        # tools/test.py --crf: deeplab-pytorch's CRF on the softmax.
        crf=dict(
            iters=10,
            pos_xy_std=1,
            pos_w=3,
            bi_xy_std=67,
            bi_rgb_std=3,
            bi_w=4,
            prob_mode='softmax')))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.)
        }))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
train_dataloader = dict(batch_size=2)
# What configs/_base_/default_runtime.py adds to mmseg's runtime.
custom_imports = dict(imports=['mmseg_wsss'], allow_failed_imports=False)
custom_hooks = [dict(type='TotalBatchInfoHook')]
default_hooks = dict(
    checkpoint=dict(
        type='WSSSCheckpointHook', max_keep_ckpts=3, save_last=True))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=16)
