# Short name of cam_wr38_2xb8-4k_voc12aug-321x321.py (the code's `bsl`)
_base_ = './cam_wr38_2xb8-4k_voc12aug-321x321.py'
