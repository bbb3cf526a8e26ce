# DeepLab-v2 (Chen et al., TPAMI 2017) ResNet-101 as the PyTorch port ASDT
# trains its second stage with (kazuto1011/deeplab-pytorch): ResNet-101 at
# output stride 8 (layer3 dilation 2, layer4 dilation 4, every block of a
# stage at the stage's rate), the sum of four dilated 3x3 classifiers (rates
# 6/12/18/24, `ASPPV2Head`), batch norms frozen (statistics and affine
# parameters, as DeepLab-v2 fine-tunes with BN fixed), CE with ignore 255
# averaged over the labelled pixels (PyTorch's CrossEntropyLoss).
#
# Init: ImageNet. mmseg's ResNetV1c (deep stem) is not DeepLab-v2's caffe
# ResNet-101; this is mmseg's `ResNet` (v1, torchvision layout, stride on
# the 3x3 conv) loading torchvision's ImageNet-1k weights, which nothing
# here downloads. Get them once:
#   wget https://download.pytorch.org/models/resnet101-63fe2227.pth \
#       -O pretrain/resnet101_torchvision-in1k.pth
# (or torch.save(torchvision.models.resnet101(weights='IMAGENET1K_V1')
# .state_dict(), ...)): the keys are mmseg ResNet's as they are; `fc.*` is
# left unused. deeplab-pytorch initialises its VOC model from a
# COCO-trained DeepLab instead (configs/second_stage/README.md).
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
    type='WSSSEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(3, ),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=False,
        style='pytorch',
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/resnet101_torchvision-in1k.pth')),
    decode_head=dict(
        type='ASPPV2Head',
        in_channels=2048,
        num_classes=num_classes,
        dilations=(6, 12, 18, 24),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(
        mode='whole',
        # tools/test.py --crf: deeplab-pytorch's CRF (DeepLab-v2's VOC
        # values) on the softmax of the logits.
        crf=dict(
            iters=10,
            pos_xy_std=1,
            pos_w=3,
            bi_xy_std=67,
            bi_rgb_std=3,
            bi_w=4,
            prob_mode='softmax')))
