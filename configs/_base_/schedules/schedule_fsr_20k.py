# FSR's CosWarmupAdamW (official_code_notes 3): AdamW lr 6e-5, betas
# (0.9, 0.999), weight decay 0.05 except on biases, 1-D parameters, the
# position embedding and the class and mask tokens; decoder, projector and
# classifiers at lr x10; 1,500 warm-up iterations from 0.1 lr, then cosine
# to 0 at max_iters (measured from the end of the warm-up).
max_iters = 20000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.05),
    constructor='PretrainedNewOptimWrapperConstructor',
    paramwise_cfg=dict(
        new_prefixes=('network.decode_head', 'network.proj_head',
                      'network.cls_head', 'network.aux_cls_head'),
        lr_mult=(1., 1., 10., 10.),
        decay_mult=(1., 0., 1., 0.),
        flat_no_decay=True,
        no_decay_keys=('pos_embed', 'cls_token', 'mask_token')),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1500),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - 1500,
        eta_min=0.,
        by_epoch=False,
        begin=1500,
        end=max_iters),
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
