# Short name of deeplabv3plus_r101-d8_4xb4-20k_voc12aug-512x512.py
_base_ = './deeplabv3plus_r101-d8_4xb4-20k_voc12aug-512x512.py'
