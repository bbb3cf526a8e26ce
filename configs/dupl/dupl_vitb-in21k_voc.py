# Short name of dupl_vit-b16-in21k_2xb2-20k_voc12aug-448x448.py
_base_ = ['./dupl_vit-b16-in21k_2xb2-20k_voc12aug-448x448.py']
