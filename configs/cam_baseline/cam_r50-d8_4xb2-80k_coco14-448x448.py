_base_ = [
    '../_base_/models/cam_r50-d8.py', '../_base_/datasets/coco14_448x448.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_sgd_20k.py'
]
max_iters = 80000
model = dict(
    backbone=dict(
        depth=50, init_cfg=dict(checkpoint='open-mmlab://resnet50_v1c')),
    cls_head=dict(num_classes=81),
    test_cfg=dict(bkg_thr=0.45))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
# Total batch 8 (4 GPUs x 2): tools/dist_train.sh CONFIG 4
auto_scale_lr = dict(enable=False, base_batch_size=8)
