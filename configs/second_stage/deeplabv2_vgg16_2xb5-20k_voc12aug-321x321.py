# DeepLab-v2 on the dilated VGG-16 ("VGG16 20M" of DeepLab/1Stage, fc7 =
# 1,024 channels at stride 8): AGEN's two-step "AGEN-VGG" row (DeepLab-ASPP
# on its one-step network's pseudo labels; AGEN gives no second-stage
# settings, so ASDT's schedule). The four-rate ASPPV2Head sits on the
# backbone's fc7; DeepLab-v2's VGG ASPP-L instead has its own fc6/fc7 per
# rate (README). No normalisation layers; conv1_* frozen.
# Weights: the code's vgg16_20M.pth in pretrain/ (loads as is).
_base_ = './deeplabv2_r101b-d8_2xb5-20k_voc12aug-321x321.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='DilatedVGG16',
        out_indices=(1, ),
        frozen_stages=1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/vgg16_20M.pth')),
    decode_head=dict(in_channels=1024))
