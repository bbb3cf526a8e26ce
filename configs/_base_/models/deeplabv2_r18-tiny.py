# DeepLab-v2 (ASPPV2Head) on the toy CAM baseline's quarter-width ResNet-18
# (cam_r18-tiny.py: V1c stem, 16 base channels, output stride 8, 128
# channels, 12 x 12 maps on 96 px), from scratch, batch norms trained.
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
    type='WSSSEncoderDecoder',
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
    decode_head=dict(
        type='ASPPV2Head',
        in_channels=128,
        num_classes=num_classes,
        # DeepLab-v2's rates (6, 12, 18, 24) are for 321 px crops (41 x 41
        # stride-8 maps); scaled to the 96 px crop (12 x 12 maps) as
        # round(rate x 96 / 321), as the toy 1Stage scales its ASPP: the
        # widest branch still spans most of the map, the narrowest is not
        # a plain 3 x 3.
        dilations=(2, 4, 5, 7),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(
        mode='whole',
        # tools/test.py --crf: deeplab-pytorch's CRF on the softmax, xy
        # standard deviations scaled to the toy images as the other toy
        # configs do.
        crf=dict(
            iters=10,
            pos_xy_std=1,
            pos_w=3,
            bi_xy_std=67,
            bi_rgb_std=3,
            bi_w=4,
            xy_scale=96 / 448,
            prob_mode='softmax')))
