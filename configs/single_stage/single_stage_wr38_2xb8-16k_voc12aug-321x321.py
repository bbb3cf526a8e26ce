_base_ = [
    '../_base_/models/single_stage_wr38.py',
    '../_base_/datasets/voc12aug_1stage-321x321.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1stage_sgd.py'
]
# 24 epochs of VOC train_aug (10,582 images, 661 iterations of 16), the
# segmentation loss on after 5 (iteration 3,305); constant LR 1e-3.
# Total batch 16 as the code (2 GPUs under DataParallel, so its decoder batch
# norms saw 8 images each): tools/dist_train.sh CONFIG 2
auto_scale_lr = dict(enable=False, base_batch_size=16)
