# Short name of fsr_vit-b16-in21k_4xb2-80k_coco14-448x448.py
_base_ = './fsr_vit-b16-in21k_4xb2-80k_coco14-448x448.py'
