# 1Stage (official_code_notes 4) on WideResNet-38: DeepLabv3+ decoder with
# global cue injection and the stochastic gate (psi 0.3, the code's rescaled
# form), nGWP + focal mask penalty (p 3, lambda 0.01), PAMR (10 iterations,
# dilations 1-24) pseudo labels with class-balanced CE.
# ImageNet weights: tools/model_converters/wr38_to_wsss.py on the code's
# `ilsvrc-cls_rna-a1_cls1000_ep-0001.pth` (not downloaded here).
num_classes = 21
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(321, 321))
model = dict(
    type='SingleStageSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='WideResNet38',
        out_indices=(0, 1),
        frozen_stages=1,  # conv1a and b2*
        norm_eval=True,  # every BN frozen (parameters and statistics)
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/wr38_imagenet-wsss.pth')),
    decode_head=dict(
        type='SingleStageHead',
        in_channels=(256, 4096),
        num_classes=num_classes,
        channels=256,
        skip_channels=48,
        aspp_dilations=(1, 12, 24, 36),
        aspp_norm_eval=True,
        use_gci=True,
        gate=dict(type='StochasticGate', psi=0.3, mode='code'),
        decoder_dropouts=(0.5, 0.1)),
    loss_seg=dict(type='ClassBalancedCELoss', loss_weight=1.0),
    class_scores=dict(
        bg_logit=1.0, focal_p=3.0, focal_lambda=0.01, ngwp_eps=1.0),
    train_cfg=dict(
        seg_start_iter=3305,  # 5 epochs x 661 iterations
        pamr=dict(num_iter=10, dilations=(1, 2, 4, 8, 12, 24)),
        pseudo_label=dict(fg_ratio=0.6, bg_ratio=0.7, min_thr=0.2)),
    test_cfg=dict(
        scales=(1.0, 0.5, 1.5, 2.0),
        flip=True,
        bg_pow=3.0,
        fp_cut=0.1,
        # 'gt' = the code's USE_GT_LABELS: not a fair evaluation.
        cls_source='pred',
        # Each scaled view centred on a 1024 x 1024 zero canvas (the code's
        # PAD_SIZE): the class scores (and the ASPP image pooling) see it.
        pad_size=(1024, 1024),
        # tools/test.py --crf: the code's CRF on the fused masks (their
        # per-pixel scale is irrelevant to the CRF, so 'normalize').
        crf=dict(preset='1stage', prob_mode='normalize')))
