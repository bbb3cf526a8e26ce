# The CAM baseline on WideResNet-38 with 1Stage's recipe: the code's `bsl`
# (launch/run_bsl_resnet38.sh: `NET.MODEL bsl TRAIN.NUM_EPOCHS 6`), i.e. GAP
# and a bias-free 1x1 classifier (Xavier init), 6 epochs at batch 16, the
# same optimiser (classifier = new weights, x10), crop and augmentation.
# Prediction is the foundation's CAM baseline protocol (CAMSegmentor) at
# 1Stage's test scales.
_base_ = [
    '../_base_/datasets/voc12aug_1stage-321x321.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1stage_sgd.py'
]
max_iters = 3966  # 6 epochs x 661
num_classes = 21
model = dict(
    type='CAMSegmentor',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(321, 321)),
    backbone=dict(
        type='WideResNet38',
        out_indices=(1, ),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/wr38_imagenet-wsss.pth')),
    cls_head=dict(
        type='CAMClsHead',
        in_channels=4096,
        num_classes=num_classes,
        pooling='gap',
        init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')),
    test_cfg=dict(
        scales=(1.0, 0.5, 1.5, 2.0),
        flip=True,
        bkg_thr=0.5,
        crf=dict(preset='toco_cam', prob_mode='normalize')))
optim_wrapper = dict(paramwise_cfg=dict(new_prefixes=('cls_head', )))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
auto_scale_lr = dict(enable=False, base_batch_size=16)
