# RRM (AAAI 2020, official_code_notes 5.1) on WideResNet-38: every batch norm
# frozen (statistics and affine); the class teacher (Dropout2d 0.5 -> GAP ->
# 1x1 conv without bias, Xavier-uniform) gives the CAMs; the segmentation
# head is two 3x3 dilation-12 convs (4096 -> 512 -> 21) on conv6 (stride 8).
# The code starts from PSA's VOC-trained classifier res38_cls.pth:
#   python tools/model_converters/wr38_to_wsss.py res38_cls.pth \
#       pretrain/wr38_res38-cls-voc.pth
# (backbone and classifier; `load_from` of the method configs).
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
    type='RRMSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='WideResNet38',
        out_indices=(1, ),
        # The code trains conv1a: RRM.py sets `not_training = []` after the
        # base class's [conv1a]. frozen_stages=0 freezes it (the notes' form).
        frozen_stages=-1,
        norm_eval=True),
    cls_head=dict(
        type='CAMClsHead',
        in_channels=4096,
        num_classes=num_classes,
        dropout=0.5,
        init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')),
    decode_head=dict(
        type='RRMSegHead',
        in_channels=4096,
        channels=512,
        num_classes=num_classes,
        dilation=12),
    # CE over background pixels + CE over foreground pixels, summed.
    loss_seg=dict(type='BgFgSegLoss', loss_weight=2.0),
    loss_energy=dict(
        type='DenseEnergyLoss',
        loss_weight=1.0,
        weight=1e-7,
        sigma_rgb=15.0,
        sigma_xy=100.0,
        scale_factor=0.5),
    train_cfg=dict(
        cam_scales=(1.0, 0.5, 1.5, 2.0),
        reliable_label=dict(
            bg_power=32,
            crf_powers=(4, 32),
            percentile=0.6,
            min_cam=0.1,
            bg_sure_thr=0.8,
            crf_sure_thr=0.8),
        # The label CRF (Gaussian 3/3, bilateral 80/13/10, 10 iterations),
        # per image over CPU worker processes.
        crf=dict(preset='1stage', workers=2),
        ignore_padding=False),
    test_cfg=dict(
        # infer_RRM.py: one scale, no flip, softmax, then the CRF (83/5/4).
        scales=(1.0, ),
        flip=False,
        crf=dict(preset='rrm', prob_mode='normalize')))
