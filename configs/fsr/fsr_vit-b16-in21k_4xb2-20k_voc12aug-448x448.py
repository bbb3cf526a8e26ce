# FSR (AAAI 2024) on VOC as the README command runs it: 4 GPUs x 2 images
# (total 8), ViT-B/16 ImageNet-21k, 20k iterations
# (tools/dist_train.sh CONFIG 4).
_base_ = [
    '../_base_/models/fsr_vit-b16.py',
    '../_base_/datasets/voc12aug_448x448.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_fsr_20k.py'
]
crop_size = (448, 448)
# Two global views (transforms.py MultiviewTransform): RandomResizedCrop(448,
# 0.32-1, bicubic), flip, ColorJitter(0.4, 0.4, 0.2, 0.1) with p 0.5; no
# grey, blur or solarize by default; no padding (no img_box). View 1 is the
# image, view 2 a packed extra view.
fsr_view = [
    dict(
        type='RandomResizedCrop',
        size=crop_size,
        scale=(0.32, 1.0),
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='ToCoPhotometricAug', jitter_prob=0.5, gray_prob=0., blur_prob=0.)
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AddView', transforms=fsr_view),
    *fsr_view,
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(enable=False, base_batch_size=8)
