# Short name of toco-noctc_vit-b16_2xb2-20k_voc12aug-448x448.py
# (ToCo without its class-token contrast)
_base_ = './toco-noctc_vit-b16_2xb2-20k_voc12aug-448x448.py'
