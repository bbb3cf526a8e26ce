# DeepLabV3+ ResNet-101 second stage: mmseg's
# deeplabv3plus_r101-d8_4xb4-20k_voc12aug-512x512.py (its model, runtime and
# 20k schedule: SGD 0.01, poly 0.9, total batch 16 = 4 GPUs x 4, SyncBN,
# ImageNet ResNetV1c init open-mmlab://resnet101_v1c, fetched by mmseg when
# training starts) built from mmseg's own base files, trained on the
# train_aug PSEUDO labels and validated on the real val masks at their own
# size with the WSSS metric (mmseg's full config cannot be inherited with
# another dataset base: their keys would clash).
#   tools/dist_train.sh CONFIG 4
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/voc12aug_pseudo_512x512.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
crop_size = (512, 512)
num_classes = 21
data_preprocessor = dict(size=crop_size)
model = dict(
    # mmseg's EncoderDecoder plus the WSSS test-time steps (--crf).
    type='WSSSEncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes),
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
# What configs/_base_/default_runtime.py adds to mmseg's runtime.
custom_imports = dict(imports=['mmseg_wsss'], allow_failed_imports=False)
custom_hooks = [dict(type='TotalBatchInfoHook')]
default_hooks = dict(
    checkpoint=dict(
        type='WSSSCheckpointHook', max_keep_ckpts=3, save_last=True))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=16)
