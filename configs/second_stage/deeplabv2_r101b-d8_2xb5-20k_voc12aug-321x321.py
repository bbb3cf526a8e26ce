# DeepLab-v2 ResNet-101 second stage on VOC train_aug pseudo labels, ASDT's
# set-up (paper Sec. IV-A; official_code_notes 5.2: "second stage via
# WSSS_MMSeg or deeplab-pytorch"): SGD 2.5e-3, poly 0.9, 20k iterations,
# total batch 10 = 2 GPUs x 5 (deeplab-pytorch: 5 x 2 accumulation steps on
# one GPU; the batch norms are frozen, so the split does not matter):
#   tools/dist_train.sh CONFIG 2
#   python tools/train.py CONFIG --cfg-options train_dataloader.batch_size=10
# ImageNet init (torchvision ResNet-101, see the model base); results are
# not comparable with COCO-initialised DeepLab-v2 numbers (README).
_base_ = [
    '../_base_/models/deeplabv2_r101b-d8.py',
    '../_base_/datasets/voc12aug_pseudo_321x321.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_deeplabv2_20k.py'
]
auto_scale_lr = dict(enable=False, base_batch_size=10)
