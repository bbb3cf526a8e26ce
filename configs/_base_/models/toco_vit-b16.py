# ToCo with PTC (no CTC) on ViT-B/16 (official_code_notes 1.2-1.8).
# Weights are not downloaded: convert timm's DeiT-B
# (deit_base_patch16_224-b5f2ef4d.pth) with
#   python tools/model_converters/timm2wsss_vit.py SRC \
#       pretrain/deit_base_patch16_224-wsss.pth
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
    type='ToCoSegmentor',
    data_preprocessor=data_preprocessor,
    network=dict(
        type='ToCoNetwork',
        backbone=dict(
            type='WSSSViT',
            aux_layer=-3,  # output of block 10 of 12, not normed
            freeze_pos_embed=True,
            init_cfg=dict(
                type='Pretrained',
                checkpoint='pretrain/deit_base_patch16_224-wsss.pth')),
        cls_head=dict(
            type='CAMClsHead',
            in_channels=768,
            num_classes=num_classes,
            pooling='gmp',
            in_index=0,
            # PyTorch's default conv init, as ToCo/DuPL (no init call).
            init_cfg=None),
        aux_cls_head=dict(
            type='CAMClsHead',
            in_channels=768,
            num_classes=num_classes,
            pooling='gmp',
            in_index=1,
            init_cfg=None,
            loss_cls=dict(
                type='CrossEntropyLoss',
                use_sigmoid=True,
                avg_non_ignore=True,
                loss_weight=1.0,
                loss_name='loss_cls_aux')),
        decode_head=dict(
            type='LargeFOVHead',
            in_channels=768,
            channels=512,
            dilation=5,
            num_classes=num_classes,
            in_index=0)),
    loss_ptc=dict(type='PTCLoss', loss_weight=0.2),
    loss_seg=dict(type='BgFgSegLoss', loss_weight=0.1),
    loss_energy=dict(type='DenseEnergyLoss', loss_weight=0.05),
    train_cfg=dict(
        cam_scales=(1.0, 0.5, 1.5),
        high_thr=0.7,
        low_thr=0.25,
        seg_start_iter=2000,
        par=dict(dilations=(1, 2, 4, 8, 12, 24), num_iter=10, w1=0.3,
                 w2=0.01)),
    test_cfg=dict(
        output='seg',
        scales=(1.0, 1.25, 1.5),
        flip=True,
        bkg_thr=0.5,
        crf=dict(preset='toco', prob_mode='softmax')))
