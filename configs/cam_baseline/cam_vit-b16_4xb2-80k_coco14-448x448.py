_base_ = [
    '../_base_/models/cam_vit-b16.py', '../_base_/datasets/coco14_448x448.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_adamw_20k.py'
]
max_iters = 80000
model = dict(
    cls_head=dict(num_classes=81),
    test_cfg=dict(scales=(1.0, 0.5, 1.5), bkg_thr=0.45))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=1500,
        end=max_iters,
        by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
# Total batch 8 (4 GPUs x 2), as ToCo's COCO runs: tools/dist_train.sh CONFIG 4
auto_scale_lr = dict(enable=False, base_batch_size=8)
