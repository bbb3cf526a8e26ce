# CAM baseline on ViT-B/16 (mmseg VisionTransformer), GMP classifier as
# ToCo's. Pretrained weights are not downloaded: convert DeiT-B
# (deit_base_patch16_224-b5f2ef4d.pth) or ViT-B IN-21k
# (jx_vit_base_p16_224-80ecf9dd.pth) timm checkpoints to mmseg keys with
# mmseg's tools/model_converters/vit2mmseg.py and put them at the path below
# (or pass --cfg-options model.backbone.init_cfg.checkpoint=PATH).
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
        type='VisionTransformer',
        img_size=(224, 224),
        patch_size=16,
        in_channels=3,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4,
        out_indices=11,
        qkv_bias=True,
        with_cls_token=True,
        output_cls_token=False,
        patch_bias=True,
        final_norm=True,
        norm_cfg=dict(type='LN', eps=1e-6),  # timm's (DeiT/ViT weights)
        interpolate_mode='bicubic',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/deit_base_patch16_224-mmseg.pth')),
    cls_head=dict(
        type='CAMClsHead',
        in_channels=768,
        num_classes=num_classes,
        pooling='gmp'),
    test_cfg=dict(
        scales=(1.0, 0.5, 1.5),
        flip=True,
        bkg_thr=0.5,
        # tools/test.py --crf: ToCo's CAM-label CRF on the normalised
        # [bkg_thr, CAMs] stack.
        crf=dict(preset='toco_cam', prob_mode='normalize')))
