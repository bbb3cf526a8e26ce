# AGEN (the full model, Table 1's last row: AGM-3/4/5 with accumulated
# CoAMs) on PASCAL VOC 2012 + SBD, one GPU at batch 15, 35 epochs (24,675
# iterations), as the paper.
_base_ = [
    '../_base_/models/agen_vgg16-wr38.py',
    '../_base_/datasets/voc12aug_agen-321x321.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_agen_sgd_35e.py'
]
auto_scale_lr = dict(enable=False, base_batch_size=15)
