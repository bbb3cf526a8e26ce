# Short name of toco_vit-b16_4xb2-80k_coco14-448x448.py
_base_ = './toco_vit-b16_4xb2-80k_coco14-448x448.py'
