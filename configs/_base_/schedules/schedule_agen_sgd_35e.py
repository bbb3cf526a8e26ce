# AGEN's schedule (paper Sec. IV.1): SGD momentum 0.9, weight decay 5e-4,
# lr 1e-3 (x10 for the attention guided modules: every `agm_` module, i.e.
# branches C and D and the CoAMs), x0.1 every 10 epochs, 35 epochs at batch
# 15. In iterations: 10,582 images / 15 = 705 per epoch (last partial batch
# dropped), 24,675 in all, steps at 7,050 / 14,100 / 21,150.
iters_per_epoch = 705
max_iters = 35 * iters_per_epoch
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'agm_': dict(lr_mult=10.)}),
    clip_grad=None)
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        milestones=[10 * iters_per_epoch, 20 * iters_per_epoch,
                    30 * iters_per_epoch],
        gamma=0.1)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='WSSSCheckpointHook',
        by_epoch=False,
        interval=5 * iters_per_epoch,
        max_keep_ckpts=3,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
