# RRM on the toy dataset with the CAM baseline's backbone, data pipeline,
# schedule (AdamW 1e-3, warm-up, poly), batch, iterations and seed, started
# from the toy CAM baseline's checkpoint (bash tools/pretrain_toy_resnet.sh).
_base_ = [
    '../_base_/models/rrm_r18-tiny.py', '../_base_/datasets/toy_96x96.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_toy_3k.py'
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
# The toy CAM baseline's last checkpoint (backbone and CAM classifier).
load_from = 'pretrain/cam_r18-tiny_toy.pth'
