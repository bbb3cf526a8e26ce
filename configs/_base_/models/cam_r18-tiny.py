# CAM baseline on a quarter-width ResNet-18 (V1c stem, 16 base channels) at
# output stride 8 (12x12 CAMs on 96 px), from
# scratch: the toy backbone (0.7M parameters).
num_classes = 10  # background + 9 toy classes; the tools sync it to the data
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(96, 96))
model = dict(
    type='CAMSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(3, ),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=dict(type='BN', requires_grad=True),
        contract_dilation=True),
    cls_head=dict(
        type='CAMClsHead',
        in_channels=128,
        num_classes=num_classes,
        pooling='gap'),
    test_cfg=dict(
        scales=(1.0, ),
        flip=True,
        bkg_thr=0.5,
        # tools/test.py --crf: ToCo's CAM-label CRF on the normalised
        # [bkg_thr, CAMs] stack; xy std scaled by image size / 448.
        crf=dict(preset='toco_cam', xy_scale=96 / 448, prob_mode='normalize')))
