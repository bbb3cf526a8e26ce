# ASDT on COCO-Stuff 10K with the 20 VOC classes (paper Table 2): the VOC
# config's model, schedule and start (PSA's VOC classifier, as the paper
# builds on RRM's VOC set-up), on the converted set
# (tools/dataset_converters/cocostuff10k.py, docs/datasets.md).
_base_ = [
    '../_base_/models/rrm_wr38.py',
    '../_base_/datasets/cocostuff10k-voc20_321x321.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_rrm_sgd_20k.py'
]
model = dict(
    type='ASDTSegmentor',
    loss_seg=dict(type='BgFgSegLoss', loss_weight=1.0),
    loss_energy=dict(loss_weight=0.5),
    train_cfg=dict(
        alternation=dict(form='paper', period=150, tau=5, start_iter=1001),
        student_crf=dict(preset='rrm', workers=2)),
    test_cfg=dict(output='fused'))
auto_scale_lr = dict(enable=False, base_batch_size=4)
load_from = 'pretrain/wr38_res38-cls-voc.pth'
