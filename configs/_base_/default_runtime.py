default_scope = 'mmseg'
# Registers mmseg_wsss' modules for any entry point (mim, scripts).
custom_imports = dict(imports=['mmseg_wsss'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo on machines without a GPU.
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
# ASDT's pw_high flips within a logger interval (T 30 on the toy set, 150 on
# VOC): beside its value at the logged iteration, the log shows the share of
# the last 50 iterations on the high level (the class teacher's phase).
log_processor = dict(
    by_epoch=False,
    custom_cfg=[
        dict(
            data_src='pw_high',
            log_name='pw_high_share',
            method_name='mean',
            window_size=50)
    ])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
tta_model = dict(type='SegTTAModel')
# Logs world size x per-process batch = total, and warns when the total
# differs from auto_scale_lr.base_batch_size (the paper's total batch).
custom_hooks = [dict(type='TotalBatchInfoHook')]
