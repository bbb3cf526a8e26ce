_base_ = [
    '../_base_/models/cam_r18-tiny.py', '../_base_/datasets/toy_96x96.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_toy_3k.py'
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
