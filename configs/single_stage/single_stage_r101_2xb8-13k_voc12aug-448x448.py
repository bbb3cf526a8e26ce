# 1Stage on ResNet-101 as the code's voc_resnet101.yaml (as ResNet-50).
_base_ = './single_stage_r50_2xb8-13k_voc12aug-448x448.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(checkpoint='torchvision://resnet101')))
