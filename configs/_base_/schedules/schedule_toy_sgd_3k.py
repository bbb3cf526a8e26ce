# Toy second-stage schedule: the toy length and warm-up of
# schedule_toy_3k.py (3,000 iterations of batch 16, 150 linear warm-up
# iterations) with the second stage's optimiser (SGD momentum 0.9, weight
# decay 5e-4, poly 0.9 to 0). One LR for all parameters: nothing is
# pretrained, so DeepLab-v2's x10 for the new head has no counterpart.
# LR 0.02 trains the toy model from scratch (checked on data/toy).
max_iters = 3000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=5e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=150),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=150,
        end=max_iters,
        by_epoch=False),
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
        interval=500,
        max_keep_ckpts=2,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
