# RRM's / ASDT's optimiser as the released code runs it (official_code_notes
# 5.1, tool/torchutils.py PolyOptimizer_cls): SGD lr 7e-4, poly 0.9 over
# 20,000 steps, groups x1 / x2 / x10 / x20 for pretrained weights /
# pretrained biases / new weights / new biases (the classifier counts as
# new: `from_scratch_layers`), weight decay 1e-5 on weights, none on biases.
# `super().__init__(params, lr, weight_decay)` passes the weight decay as
# SGD's positional *momentum*: momentum 1e-5, i.e. none. The paper's form
# (momentum 0.9, weight decay 1e-5) is
#   --cfg-options optim_wrapper.optimizer.momentum=0.9
max_iters = 20000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=7e-4, momentum=1e-5, weight_decay=1e-5),
    constructor='PretrainedNewOptimWrapperConstructor',
    paramwise_cfg=dict(
        new_prefixes=('cls_head', 'decode_head', 'student_head'),
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
        interval=2000,  # the code saves every 2,000 steps after 10,000
        max_keep_ckpts=3,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
