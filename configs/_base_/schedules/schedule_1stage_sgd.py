# 1Stage's optimiser (official_code_notes 4): SGD momentum 0.9, weight decay
# 5e-4 (none on biases), constant LR 1e-3 (no scheduler), multipliers
# 1 / 2 / 10 / 20 for pretrained weights / pretrained biases / new weights /
# new biases. The method configs set max_iters (epochs x 661 iterations of
# VOC train_aug at batch 16) and the new modules.
max_iters = 15864  # 24 epochs
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4),
    constructor='PretrainedNewOptimWrapperConstructor',
    paramwise_cfg=dict(
        new_prefixes=('decode_head', ),
        lr_mult=(1., 2., 10., 20.),
        decay_mult=(1., 0., 1., 0.)),
    clip_grad=None)
param_scheduler = []  # constant LR
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
        interval=1322,  # every 2 epochs, as the code validates
        max_keep_ckpts=4,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
