# Short name of dupl_vit-b16_8xb1-80k_coco14-448x448.py
_base_ = ['./dupl_vit-b16_8xb1-80k_coco14-448x448.py']
