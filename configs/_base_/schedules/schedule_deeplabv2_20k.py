# The second stage of ASDT (paper Sec. IV-A): SGD momentum 0.9, weight decay
# 5e-4, LR 2.5e-3 with poly decay (power 0.9) over 20,000 iterations, total
# batch 10. LR x1 / x2 / x10 / x20 for pretrained weights / pretrained
# biases / new (head) weights / new biases and no weight decay on biases:
# DeepLab-v2's lr_mult/decay_mult, which deeplab-pytorch keeps as its 1x
# (backbone convs), 10x (ASPP weights) and 20x (ASPP biases, no decay)
# groups; frozen batch norms are left out.
max_iters = 20000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=2.5e-3, momentum=0.9, weight_decay=5e-4),
    constructor='PretrainedNewOptimWrapperConstructor',
    paramwise_cfg=dict(
        new_prefixes=('decode_head', ),
        lr_mult=(1., 2., 10., 20.),
        decay_mult=(1., 0., 1., 0.)),
    clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='WSSSCheckpointHook',
        by_epoch=False,
        interval=2000,
        max_keep_ckpts=3,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
