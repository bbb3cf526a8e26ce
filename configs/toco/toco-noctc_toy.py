# Short name of toco-noctc_vit-tiny-p8_1xb16-3k_toy-96x96.py
# (ToCo without its class-token contrast)
_base_ = './toco-noctc_vit-tiny-p8_1xb16-3k_toy-96x96.py'
