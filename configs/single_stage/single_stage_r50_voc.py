# Short name of single_stage_r50_2xb8-13k_voc12aug-448x448.py
_base_ = './single_stage_r50_2xb8-13k_voc12aug-448x448.py'
