# Short name of agen_vgg16-wr38_1xb15-25k_voc12aug-321x321.py
_base_ = './agen_vgg16-wr38_1xb15-25k_voc12aug-321x321.py'
