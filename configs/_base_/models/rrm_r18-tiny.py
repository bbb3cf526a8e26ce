# RRM on the toy backbone of the CAM baseline (cam_r18-tiny.py): the same
# quarter-width ResNet-18 (V1c stem, 16 base channels, output stride 8),
# started, as RRM starts from PSA's VOC classifier, from the toy CAM
# baseline's trained classifier (backbone and CAM classifier; make it with
# `bash tools/pretrain_toy_resnet.sh`). Batch norms frozen (statistics and
# affine) as RRM's. Pixel-measured settings keep the toy scaling rule of the
# other toy configs (configs/rrm/README.md): CRF and energy xy stds x 96/448,
# the head's dilation 12 x 96/321 (the same fraction of the feature map).
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
    type='RRMSegmentor',
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
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        contract_dilation=True),
    cls_head=dict(
        type='CAMClsHead',
        in_channels=128,
        num_classes=num_classes,
        dropout=0.5,
        init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')),
    decode_head=dict(
        type='RRMSegHead',
        in_channels=128,
        channels=64,
        num_classes=num_classes,
        dilation=4),
    loss_seg=dict(type='BgFgSegLoss', loss_weight=2.0),
    loss_energy=dict(
        type='DenseEnergyLoss',
        loss_weight=1.0,
        weight=1e-7,
        sigma_rgb=15.0,
        sigma_xy=21.0,  # 100 x 96 / 448
        scale_factor=0.5),
    train_cfg=dict(
        cam_scales=(1.0, 0.5, 1.5, 2.0),
        # 16 small CRFs a step: inline is faster than worker processes.
        crf=dict(preset='1stage', xy_scale=96 / 448, workers=0),
        ignore_padding=False),
    test_cfg=dict(
        # Scale 1 with flip: the CAM baseline's toy protocol (fair
        # comparison); the code tests without flip.
        scales=(1.0, ),
        flip=True,
        crf=dict(preset='rrm', xy_scale=96 / 448, prob_mode='normalize')))
