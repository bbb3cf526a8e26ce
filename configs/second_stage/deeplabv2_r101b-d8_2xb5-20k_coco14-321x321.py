# DeepLab-v2 ResNet-101 second stage on COCO 2014 (81 classes) pseudo
# labels with ASDT's VOC schedule (SGD 2.5e-3, poly 0.9, 20k iterations,
# total batch 10 = 2 GPUs x 5; tools/dist_train.sh CONFIG 2). ImageNet init.
# ASDT's own COCO experiment trained on a 9k-image, 20-class subset; for a
# schedule closer to deeplab-pytorch's COCO-Stuff runs (100k iterations):
#   --cfg-options train_cfg.max_iters=100000 (the LR schedule follows).
_base_ = [
    '../_base_/models/deeplabv2_r101b-d8.py',
    '../_base_/datasets/coco14_pseudo_321x321.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_deeplabv2_20k.py'
]
num_classes = 81
model = dict(decode_head=dict(num_classes=num_classes))
# COCO val has 40,137 images: validate only at the end.
train_cfg = dict(val_interval=20000)
auto_scale_lr = dict(enable=False, base_batch_size=10)
