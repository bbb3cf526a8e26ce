# Short name of single_stage_vgg16_2xb8-21k_voc12aug-448x448.py
_base_ = './single_stage_vgg16_2xb8-21k_voc12aug-448x448.py'
