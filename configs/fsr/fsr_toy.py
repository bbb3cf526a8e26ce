# Short name of fsr_vit-tiny-p8_1xb16-3k_toy-96x96.py
_base_ = './fsr_vit-tiny-p8_1xb16-3k_toy-96x96.py'
