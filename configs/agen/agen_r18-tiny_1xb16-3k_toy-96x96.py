# AGEN (full model) on the toy dataset with the CAM baseline's backbone,
# data pipeline, schedule (AdamW 1e-3, warm-up, poly), batch, iterations and
# seed, from scratch as the other toy configs (1Stage's too). One learning
# rate: the paper's x10 for the AGMs is a rule for SGD next to pretrained
# weights; nothing here is pretrained.
_base_ = [
    '../_base_/models/agen_r18-tiny.py', '../_base_/datasets/toy_96x96.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_toy_3k.py'
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
