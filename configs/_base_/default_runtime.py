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
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
tta_model = dict(type='SegTTAModel')
# Logs world size x per-process batch = total, and warns when the total
# differs from auto_scale_lr.base_batch_size (the paper's total batch).
custom_hooks = [dict(type='TotalBatchInfoHook')]
