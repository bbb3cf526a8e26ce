# Short name of fsr_vit-b16-in21k_4xb2-20k_voc12aug-448x448.py
_base_ = './fsr_vit-b16-in21k_4xb2-20k_voc12aug-448x448.py'
