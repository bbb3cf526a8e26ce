# 1Stage on the toy dataset with the CAM baseline's backbone, data pipeline,
# schedule, batch, iterations and seed (cam_resnet_toy.py), so the two compare
# fairly; classification-only pretraining for 5 / 24 of the run (625 of 3,000
# iterations), as on VOC.
_base_ = [
    '../_base_/models/single_stage_r18-tiny.py',
    '../_base_/datasets/toy_96x96.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy_3k.py'
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
