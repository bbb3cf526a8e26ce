_base_ = [
    '../_base_/models/toco_vit-tiny-p8.py', '../_base_/datasets/toy_96x96.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_toy_3k.py'
]
# LR warm-up 7.5% of max_iters (VOC: 1,500 of 20,000).
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=225),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=225,
        end=3000,
        by_epoch=False),
]
# The seg loss is gated by iteration: DDP must tolerate unused parameters.
find_unused_parameters = True
auto_scale_lr = dict(enable=False, base_batch_size=16)
