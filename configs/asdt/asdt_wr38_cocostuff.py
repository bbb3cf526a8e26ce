# Short name of asdt_wr38_1xb4-20k_cocostuff10k-321x321.py
_base_ = './asdt_wr38_1xb4-20k_cocostuff10k-321x321.py'
