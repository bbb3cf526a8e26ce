_base_ = [
    '../_base_/models/cam_r50-d8.py', '../_base_/datasets/voc12aug_448x448.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_sgd_20k.py'
]
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(checkpoint='open-mmlab://resnet101_v1c')))
# Total batch 4 (2 GPUs x 2): tools/dist_train.sh CONFIG 2
auto_scale_lr = dict(enable=False, base_batch_size=4)
