# 1Stage on the toy backbone of the CAM baseline (cam_r18-tiny.py): the same
# quarter-width ResNet-18 (V1c stem, 16 base channels, output stride 8),
# from scratch, with layer1 (16 channels, stride 4) as the skip. The decoder
# is 1Stage's at a quarter of the width (64 channels, skip 16); ASPP rates and
# PAMR dilations are the code's scaled by the crop (96 / 321), so they span
# the same fraction of the feature map. Batch norms train (no pretrained
# statistics to keep) except the ASPP ones, frozen as in the code.
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
    type='SingleStageSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=dict(type='BN', requires_grad=True),
        contract_dilation=True),
    decode_head=dict(
        type='SingleStageHead',
        in_channels=(16, 128),
        num_classes=num_classes,
        channels=64,
        skip_channels=16,
        aspp_dilations=(1, 4, 7, 11),  # 12 / 24 / 36 x 96 / 321
        aspp_norm_eval=True,
        use_gci=True,
        gate=dict(type='StochasticGate', psi=0.3, mode='code'),
        decoder_dropouts=(0.5, 0.1)),
    loss_seg=dict(type='ClassBalancedCELoss', loss_weight=1.0),
    class_scores=dict(
        bg_logit=1.0, focal_p=3.0, focal_lambda=0.01, ngwp_eps=1.0),
    train_cfg=dict(
        seg_start_iter=625,  # 5 / 24 of 3,000 iterations, as VOC
        # Largest dilation a third of the 24x24 mask, as 24 of VOC's 81x81.
        pamr=dict(num_iter=10, dilations=(1, 2, 3, 4, 6, 8)),
        pseudo_label=dict(fg_ratio=0.6, bg_ratio=0.7, min_thr=0.2)),
    test_cfg=dict(
        # Scale 1 with flip: the CAM baseline's toy protocol (fair
        # comparison); set (1.0, 0.5, 1.5, 2.0) for the VOC protocol.
        scales=(1.0, ),
        flip=True,
        bg_pow=3.0,
        fp_cut=0.1,
        cls_source='pred',
        # tools/test.py --crf: the 1Stage preset, xy stds scaled by 96 / 448
        # as the other toy configs.
        crf=dict(preset='1stage', xy_scale=96 / 448, prob_mode='normalize')))
