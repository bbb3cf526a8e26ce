# ToCo's PolyWarmupAdamW (official_code_notes 1.9): AdamW lr 6e-5, betas
# (0.9, 0.999), weight decay 0.01 on every group, classifiers and the
# segmentation head x10, 1,500 warm-up iterations, poly 0.9 from iteration 0.
max_iters = 20000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'cls_head': dict(lr_mult=10.),  # also matches aux_cls_head
            'decode_head': dict(lr_mult=10.),
        }),
    clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLRWithWarmup',
        warmup_iters=1500,
        warmup_ratio=1e-6,
        power=0.9,
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
# Seg and energy losses are gated by iteration: DDP must allow unused params.
find_unused_parameters = True
