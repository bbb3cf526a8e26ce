# DeepLab-v2 on WideResNet-38 (ASDT's second DeepLab-v2 backbone, the
# "ResNet-38" of PSA/RRM; official_code_notes 4 for the layout): the
# four-rate ASPPV2Head on conv6 (4,096 channels, stride 8), every batch norm
# frozen, ASDT's schedule (voc12aug, total batch 10 = 2 GPUs x 5).
# ImageNet weights: tools/model_converters/wr38_to_wsss.py on
# ilsvrc-cls_rna-a1_cls1000_ep-0001.pth -> pretrain/wr38_imagenet-wsss.pth
# (configs/single_stage/README.md); nothing is downloaded here.
_base_ = './deeplabv2_r101b-d8_2xb5-20k_voc12aug-321x321.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='WideResNet38',
        out_indices=(1, ),
        frozen_stages=1,  # conv1a and b2*, as PSA/RRM/1Stage
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/wr38_imagenet-wsss.pth')),
    decode_head=dict(in_channels=4096))
