# Short name of deeplabv2_r18-tiny_1xb16-3k_toy-gt-96x96.py
_base_ = './deeplabv2_r18-tiny_1xb16-3k_toy-gt-96x96.py'
