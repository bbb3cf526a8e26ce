# Short name of deeplabv2_r101b-d8_2xb5-20k_voc12aug-321x321.py
_base_ = './deeplabv2_r101b-d8_2xb5-20k_voc12aug-321x321.py'
