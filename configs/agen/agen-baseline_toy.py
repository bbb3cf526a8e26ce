# Short name of agen-baseline_r18-tiny_1xb16-3k_toy-96x96.py
_base_ = './agen-baseline_r18-tiny_1xb16-3k_toy-96x96.py'
