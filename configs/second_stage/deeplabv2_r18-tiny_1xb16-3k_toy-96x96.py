# Toy second stage: DeepLab-v2 (ASPPV2Head, rates scaled to 96 px) on the
# toy quarter-width ResNet-18, from scratch, trained on a toy WSSS model's
# PSEUDO labels (tools/second_stage.sh exports them and sets the folder):
#   python tools/train.py CONFIG --cfg-options \
#       train_dataloader.dataset.pseudo_label_dir=DIR
# deeplabv2_toy_oracle.py trains the same model on the TRUE masks, for the
# gap pseudo vs true.
_base_ = [
    '../_base_/models/deeplabv2_r18-tiny.py',
    '../_base_/datasets/toy_pseudo_96x96.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_toy_sgd_3k.py'
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
