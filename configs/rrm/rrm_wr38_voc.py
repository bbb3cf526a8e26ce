# Short name of rrm_wr38_1xb4-20k_voc12aug-321x321.py
_base_ = './rrm_wr38_1xb4-20k_voc12aug-321x321.py'
