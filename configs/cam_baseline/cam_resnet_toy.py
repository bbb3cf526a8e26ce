# Short name of cam_r18-tiny_1xb16-3k_toy-96x96.py (the quick-start config)
_base_ = './cam_r18-tiny_1xb16-3k_toy-96x96.py'
