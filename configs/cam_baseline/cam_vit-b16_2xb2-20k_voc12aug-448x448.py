_base_ = [
    '../_base_/models/cam_vit-b16.py',
    '../_base_/datasets/voc12aug_448x448.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_adamw_20k.py'
]
# Total batch 4 (2 GPUs x 2), as ToCo's VOC runs: tools/dist_train.sh CONFIG 2
auto_scale_lr = dict(enable=False, base_batch_size=4)
