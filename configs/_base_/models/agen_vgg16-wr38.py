# AGEN (Chinese Journal of Electronics 2023; no public code) on the paper's
# backbones: classification branch A = VGG-16 (the dilated "20M" VGG of
# DeepLab / 1Stage, conv1-conv5; its fc layers replaced by AGEN's classifier,
# two 3x3 1024-channel convs and a 1x1 C-channel conv), segmentation branch
# B = WideResNet-38 from b3 on, sharing VGG-16's conv1 and conv2 blocks (128
# channels at stride 2, what b3 takes). ImageNet weights for both branches,
# everything else random (the paper):
#   pretrain/vgg16_20M.pth (1Stage's, loads as is),
#   pretrain/wr38_imagenet-wsss.pth (tools/model_converters/wr38_to_wsss.py).
# Every choice the paper leaves open is listed in configs/agen/README.md.
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
    type='AGENSegmentor',
    data_preprocessor=data_preprocessor,
    num_classes=num_classes,
    backbone=dict(
        type='AGENBackbone',
        cls_branch=dict(
            type='DilatedVGG16',
            # "all the branches update the entire network": nothing frozen.
            frozen_stages=-1,
            init_cfg=dict(
                type='Pretrained', checkpoint='pretrain/vgg16_20M.pth')),
        seg_branch=dict(
            type='WideResNet38',
            frozen_stages=-1,
            # The WR38 lineage's frozen ImageNet batch norms (PSA, RRM,
            # 1Stage); the paper says nothing.
            norm_eval=True,
            init_cfg=dict(
                type='Pretrained',
                checkpoint='pretrain/wr38_imagenet-wsss.pth')),
        shared_stages=2),
    cls_head=dict(channels=1024),
    seg_head=dict(channels=512),
    agm_cls_head=dict(channels=256),
    agm_seg_head=dict(channels=512),
    agm_stages=(3, 4, 5),
    coam_stages=(3, 4, 5),
    share_cls_tail=True,
    share_seg_tail=True,
    loss_cls=dict(
        type='CrossEntropyLoss',
        use_sigmoid=True,
        avg_non_ignore=True,
        loss_weight=1.0,
        loss_name='loss_cls'),
    loss_seed=dict(type='BalancedSeedingLoss', reduction='image'),
    loss_boundary=dict(type='ConstrainToBoundaryLoss'),
    train_cfg=dict(
        seeds=dict(
            bg_power=8.,
            rule='value',
            delta=dict(cls=0.3, agm3=0.4, agm4=0.4, agm5=0.3)),
        ignore_padding=True,
        boundary=dict(
            at='feature',
            crf=dict(preset='1stage', xy_scale=1 / 12, workers=2))),
    test_cfg=dict(
        scales=(1.0, ),
        flip=False,
        # tools/test.py --crf: SEC's CRF at the image size.
        crf=dict(preset='1stage')))
