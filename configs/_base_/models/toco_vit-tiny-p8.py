# ToCo with PTC (no CTC) on a tiny ViT with 8x8 patches: the toy model. As
# ViT-B starts from DeiT-B on VOC, the tiny ViT starts from its toy stand-in,
# an image-label pretraining on a separate toy set (bash
# tools/pretrain_toy_vit.sh writes the checkpoint; docs/toy_dataset.md).
# Toy scaling rule (configs/toco/README.md): gates keep their VOC proportions
# of max_iters, thresholds are VOC's halved, pixel-measured settings scale by
# 96/448.
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
    type='ToCoSegmentor',
    data_preprocessor=data_preprocessor,
    network=dict(
        type='ToCoNetwork',
        backbone=dict(
            type='WSSSViT',
            img_size=(96, 96),
            patch_size=8,
            embed_dims=128,
            num_layers=4,
            num_heads=4,
            aux_layer=-2,  # ToCo: block 10 of 12; here block 3 of 4
            freeze_pos_embed=True,  # as on VOC: the pretrained ones are kept
            init_cfg=dict(
                type='Pretrained',
                checkpoint='pretrain/vit-tiny-p8_toy-pretrain.pth')),
        cls_head=dict(
            type='CAMClsHead',
            in_channels=128,
            num_classes=num_classes,
            pooling='gmp',
            in_index=0,
            # PyTorch's default conv init, as ToCo/DuPL (no init call).
            init_cfg=None),
        aux_cls_head=dict(
            type='CAMClsHead',
            in_channels=128,
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
            in_channels=128,
            channels=256,
            dilation=5,
            num_classes=num_classes,
            in_index=0)),
    loss_ptc=dict(type='PTCLoss', loss_weight=0.2),
    loss_seg=dict(type='BgFgSegLoss', loss_weight=0.1),
    # sigma_xy 100 x 96/448, rounded (the loss halves it again internally).
    loss_energy=dict(type='DenseEnergyLoss', loss_weight=0.05, sigma_xy=21.0),
    train_cfg=dict(
        cam_scales=(1.0, 0.5, 1.5),
        # VOC's 0.7 / 0.25 halved (toy calibration, configs/toco/README.md):
        # the tiny ViT's CAMs are peakier than DeiT-B's; at 0.7 the pseudo
        # labels were 2.4 % foreground against the masks' 32 %.
        high_thr=0.35,
        low_thr=0.125,
        seg_start_iter=300,  # 10% of 3,000 (VOC: 2,000 of 20,000)
        # ToCo's dilations (1, 2, 4, 8, 12, 24) x 96/448, rounded, >= 1,
        # duplicates removed.
        par=dict(dilations=(1, 2, 3, 5), num_iter=10, w1=0.3, w2=0.01)),
    test_cfg=dict(
        output='seg',
        scales=(1.0, 1.25, 1.5),
        flip=True,
        bkg_thr=0.5,
        crf=dict(preset='toco', xy_scale=96 / 448, prob_mode='softmax')))
