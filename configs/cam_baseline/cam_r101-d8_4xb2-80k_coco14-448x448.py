_base_ = './cam_r50-d8_4xb2-80k_coco14-448x448.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(checkpoint='open-mmlab://resnet101_v1c')))
