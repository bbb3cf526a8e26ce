# Short name of toco-noctc_vit-b16_4xb2-80k_coco14-448x448.py
# (ToCo without its class-token contrast)
_base_ = './toco-noctc_vit-b16_4xb2-80k_coco14-448x448.py'
