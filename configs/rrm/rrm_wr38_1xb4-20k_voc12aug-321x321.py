_base_ = [
    '../_base_/models/rrm_wr38.py',
    '../_base_/datasets/voc12aug_rrm-321x321.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_rrm_sgd_20k.py'
]
# One GPU at batch 4, 20,000 iterations, from PSA's VOC classifier (README).
auto_scale_lr = dict(enable=False, base_batch_size=4)
# PSA's VOC classifier res38_cls.pth, converted (backbone and classifier):
#   python tools/model_converters/wr38_to_wsss.py res38_cls.pth \
#       pretrain/wr38_res38-cls-voc.pth
load_from = 'pretrain/wr38_res38-cls-voc.pth'
