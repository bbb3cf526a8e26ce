# Short name of dupl_vit-tiny-p8_1xb8-3k_toy-96x96.py
_base_ = ['./dupl_vit-tiny-p8_1xb8-3k_toy-96x96.py']
