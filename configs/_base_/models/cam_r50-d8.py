# CAM baseline on ResNet-50 V1c at output stride 8 (dilated stages 3-4), GAP
# classifier. Weights: mmseg's `open-mmlab://resnet50_v1c` (not downloaded
# here; put the file in the mmengine cache or set init_cfg.checkpoint).
num_classes = 21
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(448, 448))
model = dict(
    type='CAMSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        contract_dilation=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')),
    cls_head=dict(
        type='CAMClsHead',
        in_channels=2048,
        num_classes=num_classes,
        pooling='gap'),
    test_cfg=dict(
        scales=(1.0, 0.5, 1.5),
        flip=True,
        bkg_thr=0.5,
        # tools/test.py --crf: ToCo's CAM-label CRF on the normalised
        # [bkg_thr, CAMs] stack.
        crf=dict(preset='toco_cam', prob_mode='normalize')))
