_base_ = './toco_vit-b16_2xb2-20k_voc12aug-448x448.py'
# ViT-B/16 ImageNet-21k (timm jx_vit_base_p16_224-80ecf9dd.pth, converted
# with tools/model_converters/timm2wsss_vit.py); ImageNet mean/std as the code.
# The ToCo row FSR compares with (71.1 val with MS + CRF).
model = dict(
    network=dict(
        backbone=dict(
            init_cfg=dict(
                checkpoint='pretrain/jx_vit_base_p16_224-wsss.pth'))))
