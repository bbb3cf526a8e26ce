# CAM baseline on a tiny ViT with 8x8 patches (12x12 tokens on 96 px): the toy
# ViT, started from the toy stand-in for DeiT-B (bash
# tools/pretrain_toy_vit.sh; docs/toy_dataset.md) as the toy ToCo and DuPL
# models are. GMP pooling as ToCo's ViT classifier.
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
    # The same backbone as the toy ToCo model (configs/toco), so the CAM
    # baseline comparison differs only in the method.
    backbone=dict(
        type='WSSSViT',
        img_size=(96, 96),
        patch_size=8,
        embed_dims=128,
        num_layers=4,
        num_heads=4,
        aux_layer=-2,
        freeze_pos_embed=True,  # as ToCo on VOC: the pretrained ones are kept
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/vit-tiny-p8_toy-pretrain.pth')),
    cls_head=dict(
        type='CAMClsHead',
        in_channels=128,
        num_classes=num_classes,
        pooling='gmp',
        in_index=0),
    test_cfg=dict(
        scales=(1.0, ),
        flip=True,
        bkg_thr=0.5,
        # tools/test.py --crf: ToCo's CAM-label CRF on the normalised
        # [bkg_thr, CAMs] stack; xy std scaled by image size / 448.
        crf=dict(preset='toco_cam', xy_scale=96 / 448, prob_mode='normalize')))
