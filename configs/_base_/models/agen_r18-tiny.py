# AGEN on the toy backbone: branches A and B are two quarter-width
# ResNet-18s (the CAM baseline's, cam_r18-tiny.py: V1c stem, 16 base
# channels, output stride 8) sharing the stem and layer1; A3 / A4 / A5 and
# B3 / B4 / B5 are layer2 / layer3 / layer4 (B's classifier reads layer4
# too). From scratch, as every toy config; batch norms train. Heads at a
# quarter of the paper's width (A 256, B 128, C 64, D 128 channels). The
# boundary CRF on the 12 x 12 output grid of 96 px crops keeps SEC's
# fraction of the grid (80 / 12 px of 41 -> 80 / 41 px of 12).
num_classes = 10  # background + 9 toy classes; the tools sync it to the data
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(96, 96))
resnet = dict(
    type='ResNetV1c',
    depth=18,
    stem_channels=16,
    base_channels=16,
    num_stages=4,
    out_indices=(3, ),
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    norm_cfg=dict(type='BN', requires_grad=True),
    contract_dilation=True)
model = dict(
    type='AGENSegmentor',
    data_preprocessor=data_preprocessor,
    num_classes=num_classes,
    backbone=dict(
        type='AGENBackbone',
        cls_branch=resnet,
        seg_branch=resnet,
        shared_stages=2),
    cls_head=dict(channels=256),
    seg_head=dict(channels=128),
    agm_cls_head=dict(channels=64),
    agm_seg_head=dict(channels=128),
    agm_stages=(3, 4, 5),
    coam_stages=(3, 4, 5),
    loss_seed=dict(type='BalancedSeedingLoss', reduction='image'),
    loss_boundary=dict(type='ConstrainToBoundaryLoss'),
    train_cfg=dict(
        boundary=dict(
            at='feature',
            # 16 CRFs of 12 x 12 a step: inline is faster than workers.
            crf=dict(preset='1stage', xy_scale=1 / 41, workers=0))),
    test_cfg=dict(
        # Scale 1 with flip: the toy protocol of the other methods.
        scales=(1.0, ),
        flip=True,
        crf=dict(preset='1stage', xy_scale=96 / 448)))
