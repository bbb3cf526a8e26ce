# Short name of single_stage_r18-tiny_1xb16-3k_toy-96x96.py
_base_ = './single_stage_r18-tiny_1xb16-3k_toy-96x96.py'
