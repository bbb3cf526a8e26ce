# Short name of single_stage_wr38_2xb8-16k_voc12aug-321x321.py
_base_ = './single_stage_wr38_2xb8-16k_voc12aug-321x321.py'
